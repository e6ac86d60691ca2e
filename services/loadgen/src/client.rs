//! How the generator sends its requests.
//!
//! The generator shares the machine with the server it measures, so every microsecond it
//! spends on a request is taken from the server. A closed-loop client against a plain
//! `http://` URL therefore holds one keep-alive HTTP/1.1 connection of its own and drives
//! it with hyper's connection-level client: no pool, no URL parsing, no body copies
//! (bodies are shared `Bytes`). Open-loop runs, which start a task per due request, and
//! `https://` URLs use reqwest's pooled client.

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One request, ready to send: the path below the base URL (with its leading `/`).
pub struct Request {
    pub post: bool,
    pub path: String,
    pub body: Option<Bytes>,
    pub if_none_match: Option<String>,
}

/// An answer: its status and, read in full, its body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Base URL split for the connection-level client.
#[derive(Clone)]
pub struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    host: String,
    /// Path prefix of the base URL, without a trailing `/`.
    prefix: String,
}

impl Target {
    /// `None` for anything but a plain `http://` URL.
    pub fn plain_http(url: &str) -> anyhow::Result<Option<Self>> {
        let u = reqwest::Url::parse(url).with_context(|| format!("parsing --url {url}"))?;
        if u.scheme() != "http" {
            return Ok(None);
        }
        let Some(host) = u.host_str() else {
            bail!("--url {url} has no host");
        };
        let port = u.port_or_known_default().unwrap_or(80);
        Ok(Some(Self {
            addr: format!("{host}:{port}"),
            host: match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            },
            prefix: u.path().trim_end_matches('/').to_string(),
        }))
    }
}

/// One closed-loop client's connection; reopened after the server closes it or an error.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(&self.target.addr)
                .await
                .map_err(|_| "connect".to_string())?;
            let _ = tcp.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|_| "connect".to_string())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| "connect".to_string())
    }

    pub async fn send(&mut self, req: &Request) -> Result<Answer, String> {
        let mut b = hyper::Request::builder()
            .method(if req.post { "POST" } else { "GET" })
            .uri(format!("{}{}", self.target.prefix, req.path))
            .header("host", &self.target.host);
        if req.body.is_some() {
            b = b.header("content-type", "application/json");
        }
        if let Some(e) = &req.if_none_match {
            b = b.header("if-none-match", e);
        }
        let http = b
            .body(Full::new(req.body.clone().unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let sender = self.connect().await?;
        sender.ready().await.map_err(|_| "transport".to_string())?;
        let answer = async {
            let r = sender.send_request(http).await?;
            let status = r.status().as_u16();
            let body = r.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Answer { status, body })
        }
        .await;
        answer.map_err(|_| {
            self.sender = None;
            "transport".to_string()
        })
    }
}

/// The same request through reqwest (open loop, HTTPS).
pub async fn send_pooled(
    client: &reqwest::Client,
    url: &str,
    req: &Request,
) -> Result<Answer, String> {
    let full = format!("{}{}", url.trim_end_matches('/'), req.path);
    let mut r = if req.post {
        client.post(full)
    } else {
        client.get(full)
    };
    if let Some(body) = &req.body {
        r = r
            .header("content-type", "application/json")
            .body(body.clone());
    }
    if let Some(e) = &req.if_none_match {
        r = r.header("if-none-match", e);
    }
    match r.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| e.to_string())?;
            Ok(Answer { status, body })
        }
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) if e.is_connect() => Err("connect".into()),
        Err(_) => Err("transport".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};

    /// A server that echoes POST bodies below a path prefix, answers a revalidation with
    /// 304, and closes the connection after `/bye`.
    async fn server() -> String {
        let app = axum::Router::new()
            .route(
                "/base/echo",
                post(|h: HeaderMap, body: Bytes| async move {
                    let ct = h.get(header::CONTENT_TYPE).cloned();
                    (
                        StatusCode::CREATED,
                        [(
                            header::CONTENT_TYPE,
                            ct.unwrap_or(header::HeaderValue::from_static("none")),
                        )],
                        body,
                    )
                }),
            )
            .route(
                "/base/tile",
                get(|h: HeaderMap| async move {
                    if h.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"t\"") {
                        StatusCode::NOT_MODIFIED.into_response()
                    } else {
                        "tile".into_response()
                    }
                }),
            )
            .route(
                "/base/bye",
                get(|| async { ([(header::CONNECTION, "close")], "bye") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/base/", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn req(post: bool, path: &str, body: Option<&'static [u8]>, etag: Option<&str>) -> Request {
        Request {
            post,
            path: path.into(),
            body: body.map(Bytes::from_static),
            if_none_match: etag.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn one_connection_sends_posts_and_revalidations_and_reconnects() {
        let url = server().await;
        let mut conn = Conn::new(Target::plain_http(&url).expect("url").expect("plain"));
        let a = conn
            .send(&req(true, "/echo", Some(b"{\"x\":1}"), None))
            .await
            .expect("post");
        assert_eq!((a.status, a.body.as_ref()), (201, b"{\"x\":1}".as_ref()));
        let a = conn
            .send(&req(false, "/tile", None, Some("\"t\"")))
            .await
            .expect("304");
        assert_eq!(a.status, 304);
        let a = conn
            .send(&req(false, "/tile", None, Some("\"u\"")))
            .await
            .expect("200");
        assert_eq!((a.status, a.body.as_ref()), (200, b"tile".as_ref()));
        // the server closes the connection after this answer; the next request reconnects
        let a = conn
            .send(&req(false, "/bye", None, None))
            .await
            .expect("bye");
        assert_eq!(a.status, 200);
        let a = conn
            .send(&req(false, "/nothing", None, None))
            .await
            .expect("404");
        assert_eq!(a.status, 404);
        // the same through the pooled client
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let pooled = reqwest::Client::new();
        let a = send_pooled(&pooled, &url, &req(true, "/echo", Some(b"[]"), None))
            .await
            .expect("pooled");
        assert_eq!((a.status, a.body.as_ref()), (201, b"[]".as_ref()));
    }

    #[tokio::test]
    async fn only_plain_http_urls_get_a_connection_of_their_own() {
        assert!(
            Target::plain_http("https://log.example/")
                .expect("url")
                .is_none()
        );
        let t = Target::plain_http("http://127.0.0.1:3900")
            .expect("url")
            .expect("plain");
        assert_eq!(
            (t.addr.as_str(), t.host.as_str(), t.prefix.as_str()),
            ("127.0.0.1:3900", "127.0.0.1:3900", "")
        );
        let t = Target::plain_http("http://log.example/rekor/")
            .expect("url")
            .expect("plain");
        assert_eq!(
            (t.addr.as_str(), t.host.as_str(), t.prefix.as_str()),
            ("log.example:80", "log.example", "/rekor")
        );
        let mut conn = Conn::new(
            Target::plain_http("http://127.0.0.1:1")
                .expect("url")
                .expect("plain"),
        );
        assert_eq!(
            conn.send(&req(false, "/", None, None))
                .await
                .err()
                .as_deref(),
            Some("connect")
        );
    }
}
