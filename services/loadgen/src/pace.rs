//! Open-loop pacing. Requests are due at fixed instants and their latency is measured
//! from the instant each was due, so a server that falls behind cannot hide its queue.
//! That makes the generator's own punctuality part of every figure: tokio's timer wheel
//! ticks in whole milliseconds and wakes a sleeper at the next tick or later, which at
//! 1,000 requests/s adds up to a millisecond of the generator's delay to each latency.
//! So the schedule is kept by a thread of its own that sleeps on the kernel's
//! high-resolution timers, and how late each request actually started is reported
//! beside the latencies.

use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Request `i` of `total` at `rate` per second from `started`: sent as `(i, due)` on the
/// returned channel when due. The channel closes after the last one, or early when the
/// receiver is dropped.
pub fn schedule(
    rate: f64,
    total: usize,
    started: Instant,
) -> mpsc::UnboundedReceiver<(usize, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let interval = Duration::from_secs_f64(1.0 / rate);
    std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            for i in 0..total {
                let due = started + interval.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if tx.send((i, due)).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the pacer thread");
    rx
}

/// The p50, p99 and largest of microsecond samples, in milliseconds (sorts them).
pub fn summary(samples: &mut [u64]) -> (f64, f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| {
        samples
            .get(((p / 100.0) * (samples.len().max(1) - 1) as f64).round() as usize)
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    (at(50.0), at(99.0), at(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_comes_once_in_order_and_not_early() {
        let started = Instant::now();
        let mut rx = schedule(2000.0, 50, started);
        let mut seen = Vec::new();
        while let Some((i, due)) = rx.recv().await {
            assert!(
                Instant::now() >= due,
                "request {i} handed out before it was due"
            );
            assert_eq!(
                due,
                started + Duration::from_secs_f64(1.0 / 2000.0).mul_f64(i as f64)
            );
            seen.push(i);
        }
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn summary_of_samples() {
        let mut s = vec![3000, 1000, 2000];
        assert_eq!(summary(&mut s), (2.0, 3.0, 3.0));
        assert_eq!(summary(&mut []), (0.0, 0.0, 0.0));
    }
}
