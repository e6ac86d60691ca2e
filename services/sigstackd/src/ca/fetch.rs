//! HTTP for the CA: fetching OIDC discovery documents and key sets for the token cache,
//! and submitting precertificates to the CT log.

use sigstack_ca::token::{FetchError, KeyFetcher};
use std::time::Duration;

/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT: usize = 1 << 20;

#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // discovery must not be redirected elsewhere (as Fulcio)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

impl HttpFetcher {
    /// The HTTP client (10 s timeout, no redirects).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// The body of a successful answer to a request for `what`, at most 1 MiB.
pub async fn read_document(res: reqwest::Response, what: &str) -> Result<Vec<u8>, FetchError> {
    if !res.status().is_success() {
        return Err(FetchError::new(format!("{what}: HTTP {}", res.status())));
    }
    if res
        .content_length()
        .is_some_and(|n| n as usize > MAX_DOCUMENT)
    {
        return Err(FetchError::new(format!("{what}: document too large")));
    }
    let mut res = res;
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| FetchError::new(format!("{what}: {e}")))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(FetchError::new(format!("{what}: document too large")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl KeyFetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let res = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError::new(format!("GET {url}: {e}")))?;
        read_document(res, &format!("GET {url}")).await
    }
}
