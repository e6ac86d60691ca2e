//! A fixed set of threads for the CPU-bound part of an append (parsing and verifying the
//! proposed entry), off the async workers.
//!
//! tokio's blocking pool starts a thread whenever none is idle at the instant a task
//! arrives; under a few hundred concurrent appends it grew to some fifty threads, each
//! created and torn down again, each with an allocator heap of its own. Here the threads
//! are started once, as many as the machine has cores, and `slots` bounds the work
//! queued for them (a caller beyond it waits asynchronously, holding nothing).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

pub struct CpuPool {
    jobs: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
}

/// Why a job did not give its result.
#[derive(Debug)]
pub enum PoolError {
    Closed,
    Panicked,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Closed => "shutting down",
            Self::Panicked => "the work panicked",
        })
    }
}

impl From<PoolError> for sigstack_http::ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Closed => Self::unavailable(e.to_string()),
            PoolError::Panicked => Self::internal(e.to_string()),
        }
    }
}

impl CpuPool {
    /// `threads` workers named `name`, and up to `queued` jobs running or waiting.
    pub fn new(name: &str, threads: usize, queued: usize) -> std::io::Result<Arc<Self>> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        // the lock is held only while waiting for the next job
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // the pool is gone
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Arc::new(Self {
            jobs,
            slots: Arc::new(Semaphore::new(queued.max(1))),
        }))
    }

    /// One worker per core, and twice as many jobs in flight, so a worker finishing one
    /// finds the next already queued.
    pub fn per_core(name: &str) -> std::io::Result<Arc<Self>> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(name, cores, cores * 2)
    }

    /// Runs `f` on a worker and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let _slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        });
        self.jobs.send(job).map_err(|_| PoolError::Closed)?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(PoolError::Panicked),
            Err(_) => Err(PoolError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_every_job_on_its_own_threads_and_survives_a_panic() {
        let pool = CpuPool::new("test-pool", 2, 3).expect("pool");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..64u64).map(|i| {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    let name = std::thread::current().name().map(str::to_string);
                    (i * 2, name)
                })
                .await
            })
        });
        for (i, j) in jobs.enumerate() {
            let (v, name) = j.await.expect("task").expect("result");
            assert_eq!(v, i as u64 * 2);
            assert!(
                name.is_some_and(|n| n.starts_with("test-pool-")),
                "ran off the pool"
            );
        }
        // never more at once than the pool has threads
        assert!(most.load(Ordering::SeqCst) <= 2);
        // a job that panics is an error for its caller, and the worker lives on
        let r = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(r, Err(PoolError::Panicked)));
        let r = pool.run(|| 7).await;
        assert_eq!(r.expect("after a panic"), 7);
    }
}
