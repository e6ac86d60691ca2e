//! Serving a router over TCP so that slow or idle clients cannot take a service down:
//! a connection holds one of [`MAX_CONNECTIONS`] slots (past that, new connections wait
//! in the kernel's backlog), request headers must arrive within [`HEADER_TIMEOUT`]
//! (slowloris: half-sent headers are dropped), and shutdown drains in-flight requests
//! before returning. Handlers see the peer address as `ConnectInfo<SocketAddr>`.
//!
//! Request bodies have their own deadline where they are read ([`read_body`]), and the
//! bytes of request bodies a service holds at once are bounded ([`BODY_BUDGET`]): a
//! request whose body would go past it is answered 503 with `Retry-After`, so many
//! clients sending large bodies at once cannot exhaust the server's memory.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Connections served at once, per service.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send a request's headers (hyper counts an idle
/// keep-alive connection's wait for its next request in this too, so it is longer than
/// the polling interval of any client we know: the device flow polls every 5–10 s).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request body (see [`read_body`]).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-body bytes one service holds at once, counted as they arrive and held until
/// the request is answered (each request's own limit applies besides).
pub const BODY_BUDGET: usize = 64 << 20;

/// The part of [`BODY_BUDGET`] one request holds, and whether it was refused more.
#[derive(Default)]
struct Held {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// 503 (the budget is spent for now) or 413 (the body alone is larger than it).
    refused: Option<axum::http::StatusCode>,
}

/// The body budget is in KiB permits (a semaphore counts at most `u32::MAX`).
const KIB: usize = 1024;

fn refusal(status: axum::http::StatusCode) -> axum::response::Response {
    use axum::response::IntoResponse;
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return (status, "request body is larger than this server accepts\n").into_response();
    }
    (
        status,
        [(axum::http::header::RETRY_AFTER, "1")],
        "the server holds as many request bodies as it accepts at once; retry shortly\n",
    )
        .into_response()
}

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, None).await
}

/// [`serve`], over TLS when `tls` is given (the handshake within [`HANDSHAKE_TIMEOUT`],
/// inside the connection's slot).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let budget = Arc::new(Semaphore::new(BODY_BUDGET / KIB));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // out of file descriptors and the like: back off instead of spinning
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let budget = budget.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, peer, router, budget, &mut stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => connection(s, peer, router, budget, &mut stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    // drain: every connection gives its slot back when it ends
    let _ = stop_tx.send(true);
    let _ = slots.acquire_many(MAX_CONNECTIONS as u32).await;
    Ok(())
}

/// Serves one connection's requests until it closes or the server stops.
async fn connection<IO>(
    stream: IO,
    peer: std::net::SocketAddr,
    router: Router,
    budget: Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let held = Arc::new(std::sync::Mutex::new(Held::default()));
        let answer = router
            .clone()
            .oneshot(req.map(|b| Body::new(Deadline::new(b, budget.clone(), held.clone()))));
        async move {
            let answer = answer.await;
            // the body's share of the budget is given back with the answer
            let refused = held
                .lock()
                .map(|h| h.refused)
                .unwrap_or(Some(axum::http::StatusCode::SERVICE_UNAVAILABLE));
            if let Some(status) = refused {
                return Ok(refusal(status));
            }
            answer
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A request body that fails once [`BODY_TIMEOUT`] (and a little more: handlers that read
/// with [`read_body`] answer 408 first) has passed since its headers arrived, whoever
/// reads it: no handler can be kept waiting on a body that trickles in.
struct Deadline {
    inner: hyper::body::Incoming,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    budget: Arc<Semaphore>,
    held: Arc<std::sync::Mutex<Held>>,
    /// Bytes of this body received so far.
    received: usize,
}

impl Deadline {
    fn new(
        inner: hyper::body::Incoming,
        budget: Arc<Semaphore>,
        held: Arc<std::sync::Mutex<Held>>,
    ) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(BODY_TIMEOUT + Duration::from_secs(5))),
            budget,
            held,
            received: 0,
        }
    }

    /// Takes from the budget what the bytes received so far need; false when it is spent.
    fn account(&mut self, len: usize) -> bool {
        self.received += len;
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let have = held.permit.as_ref().map_or(0, |p| p.num_permits());
        let need = self.received.div_ceil(KIB);
        if need <= have {
            return true;
        }
        if need > BODY_BUDGET / KIB {
            held.refused = Some(axum::http::StatusCode::PAYLOAD_TOO_LARGE);
            return false;
        }
        let more = u32::try_from(need - have).unwrap_or(u32::MAX);
        match self.budget.clone().try_acquire_many_owned(more) {
            Ok(p) => {
                match held.permit.as_mut() {
                    Some(h) => h.merge(p),
                    None => held.permit = Some(p),
                }
                true
            }
            Err(_) => {
                held.refused = Some(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                false
            }
        }
    }
}

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        if self.inner.is_end_stream() {
            return std::task::Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(
                "the request body did not arrive in time".into()
            )));
        }
        let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(f))) = &frame {
            let len = f.data_ref().map_or(0, |d| d.len());
            if len > 0 && !self.account(len) {
                return std::task::Poll::Ready(Some(Err(
                    "the server holds as many request bodies as it accepts at once".into(),
                )));
            }
        }
        frame.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// It did not arrive within [`BODY_TIMEOUT`].
    TooSlow,
    /// It is longer than the limit.
    TooLarge,
    /// The connection failed while reading it.
    Broken,
}

impl From<BodyError> for crate::ApiError {
    fn from(e: BodyError) -> Self {
        use axum::http::StatusCode;
        match e {
            BodyError::TooSlow => crate::ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ),
            BodyError::TooLarge => crate::ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body is larger than this server accepts",
            ),
            BodyError::Broken => crate::ApiError::bad_request("the request body could not be read"),
        }
    }
}

/// Reads a whole body of at most `limit` bytes within [`BODY_TIMEOUT`].
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, BodyError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            Err(if too_large {
                BodyError::TooLarge
            } else {
                BodyError::Broken
            })
        }
    }
}
