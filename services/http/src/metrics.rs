//! Prometheus metrics for HTTP services, without a metrics library: a request counter
//! and a latency histogram per (method, matched route, status), rendered in the text
//! exposition format together with whatever gauges the service adds.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Label sets kept; requests beyond are counted under route "other" (routes are
/// matched patterns, so only a misconfiguration could reach this).
const MAX_SERIES: usize = 512;

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The HTTP metrics of one service (`service` label).
pub struct HttpMetrics {
    service: &'static str,
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl HttpMetrics {
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self {
            service,
            series: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        let Ok(mut m) = self.series.lock() else {
            return;
        };
        // found without building a key: the label set nearly always exists already
        let found = m
            .iter_mut()
            .find(|((me, ro, st), _)| *st == status && me == method && ro == route)
            .map(|(_, s)| s);
        let s = match found {
            Some(s) => s,
            None => {
                let mut key = (method.to_string(), route.to_string(), status);
                if m.len() >= MAX_SERIES {
                    key.1 = "other".into();
                }
                m.entry(key).or_default()
            }
        };
        s.count += 1;
        s.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// `sigstack_http_requests_total` and `sigstack_http_request_duration_seconds`.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().map(|m| m.clone()).unwrap_or_default();
        out.push_str("# HELP sigstack_http_requests_total HTTP requests answered, by route and status.\n# TYPE sigstack_http_requests_total counter\n");
        for ((method, route, status), s) in &series {
            let _ = writeln!(
                out,
                "sigstack_http_requests_total{{service=\"{}\",method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                self.service,
                escape(route),
                s.count
            );
        }
        out.push_str("# HELP sigstack_http_request_duration_seconds Time to answer HTTP requests.\n# TYPE sigstack_http_request_duration_seconds histogram\n");
        for ((method, route, status), s) in &series {
            let labels = format!(
                "service=\"{}\",method=\"{method}\",route=\"{}\",status=\"{status}\"",
                self.service,
                escape(route)
            );
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "sigstack_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "sigstack_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 sigstack_http_request_duration_seconds_sum{{{labels}}} {}\n\
                 sigstack_http_request_duration_seconds_count{{{labels}}} {}",
                s.count, s.sum, s.count
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends one gauge (or counter) with HELP and TYPE lines.
pub fn gauge(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Middleware: logs each request (as [`crate::log_requests`]) and records it.
pub async fn observe(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    // the path of an unmatched request, for its log line
    let path = route.is_none().then(|| req.uri().path().to_string());
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let secs = start.elapsed().as_secs_f64();
    // unmatched paths are not labels: a scanner would make unbounded series
    m.record(
        method.as_str(),
        route.as_ref().map_or("unmatched", |r| r.as_str()),
        status,
        secs,
    );
    let route = route
        .as_ref()
        .map_or(path.as_deref().unwrap_or(""), |r| r.as_str());
    let ms = secs * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %route, status, ms, "request");
    } else {
        tracing::debug!(%method, %route, status, ms, "request");
    }
    res
}

/// The response of a `/metrics` endpoint.
pub fn response(text: String) -> Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_cumulatively() {
        let m = HttpMetrics::new("log");
        m.record("GET", "/api/v1/log", 200, 0.003);
        m.record("GET", "/api/v1/log", 200, 0.2);
        m.record("POST", "/x\"y", 400, 20.0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("sigstack_http_requests_total{service=\"log\",method=\"GET\",route=\"/api/v1/log\",status=\"200\"} 2\n"));
        assert!(out.contains("route=\"/api/v1/log\",status=\"200\",le=\"0.0025\"} 0\n"));
        assert!(out.contains("route=\"/api/v1/log\",status=\"200\",le=\"0.005\"} 1\n"));
        assert!(out.contains("route=\"/api/v1/log\",status=\"200\",le=\"0.25\"} 2\n"));
        assert!(out.contains("route=\"/x\\\"y\",status=\"400\",le=\"10\"} 0\n"));
        assert!(out.contains("route=\"/x\\\"y\",status=\"400\",le=\"+Inf\"} 1\n"));
    }

    #[test]
    fn series_are_bounded() {
        let m = HttpMetrics::new("t");
        for i in 0..(MAX_SERIES + 10) {
            m.record("GET", &format!("/r{i}"), 200, 0.0);
        }
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("route=\"other\",status=\"200\"} 10\n"));
    }
}
