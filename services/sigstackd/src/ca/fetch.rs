//! HTTP for the CA: fetching OIDC discovery documents and key sets for the token cache,
//! and submitting precertificates to the CT log.

use sigstack_ca::token::{FetchError, KeyFetcher};
use std::time::Duration;

/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT: usize = 1 << 20;

#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    /// (public prefix, prefix to fetch from), longest first.
    routes: Vec<(String, String)>,
}

impl HttpFetcher {
    pub fn new(routes: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut routes: Vec<(String, String)> =
            routes.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
        routes.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
        Ok(Self {
            routes,
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

impl HttpFetcher {
    /// `url` with a routed prefix replaced (see the CA's `issuer_routes`).
    fn route(&self, url: &str) -> String {
        for (from, to) in &self.routes {
            if let Some(rest) = url.strip_prefix(from.as_str())
                && (rest.is_empty() || rest.starts_with('/') || from.ends_with('/'))
            {
                return format!("{to}{rest}");
            }
        }
        url.to_string()
    }
}

impl KeyFetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let url = &self.route(url);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_replace_whole_prefixes_only() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let routes = [
            (
                "http://localhost:5556".to_string(),
                "http://oidc:5556".to_string(),
            ),
            (
                "http://localhost:5556/workload".to_string(),
                "http://w:1".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let f = HttpFetcher::new(&routes).expect("client");
        assert_eq!(
            f.route("http://localhost:5556/.well-known/openid-configuration"),
            "http://oidc:5556/.well-known/openid-configuration"
        );
        assert_eq!(
            f.route("http://localhost:5556/workload/keys"),
            "http://w:1/keys"
        );
        assert_eq!(
            f.route("http://localhost:55567/keys"),
            "http://localhost:55567/keys"
        );
        assert_eq!(f.route("https://other/keys"), "https://other/keys");
    }
}
