//! Per-issuer discovery (OpenID Connect Discovery 1.0 §4) and JWKS caching, sans I/O: the
//! daemon supplies a [`KeyFetcher`] and the current time.
//!
//! Policy, per issuer:
//! * the discovery document must name the configured issuer exactly; its `jwks_uri` and
//!   `id_token_signing_alg_values_supported` are kept, and it is fetched again with each
//!   key set (a failed refetch keeps the previous one);
//! * the key set is cached and refetched when older than [`CachePolicy::jwks_ttl`], or when
//!   a token names a key the set lacks or an algorithm not advertised (key rotation,
//!   OpenID Connect Core §10.1.1);
//! * fetch attempts are at most one per [`CachePolicy::min_refetch_interval`], so tokens
//!   with garbage `kid`s cannot make us hammer the issuer, and at most one is in flight:
//!   concurrent callers wait for it rather than fetching too;
//! * a failed refresh keeps serving the previous keys; with no keys at all the failure is
//!   returned, as an error for which [`TokenError::is_unavailable`] is true.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};

use serde::Deserialize;

use super::claims::check_claims;
use super::{
    Algorithm, Claims, Expectations, FetchError, Jwks, TokenError, UnverifiedToken, verify,
};

/// Fetches a document over HTTP(S) for the cache; implemented by the daemon (timeouts,
/// redirect policy, body-size limit and TLS roots are its business).
pub trait KeyFetcher: Send + Sync {
    /// The body of a successful (200) GET of `url`.
    fn get(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// Cache timings, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// A key set older than this is refetched on next use.
    pub jwks_ttl: i64,
    /// Fetch attempts for one issuer are at least this far apart.
    pub min_refetch_interval: i64,
    /// [`KeyCache`] forgets the least recently used issuer beyond this many.
    pub max_issuers: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            jwks_ttl: 15 * 60,
            min_refetch_interval: 10,
            max_issuers: 100,
        }
    }
}

/// What discovery yielded.
#[derive(Debug)]
struct Discovery {
    jwks_uri: String,
    /// Advertised algorithms this verifier implements; `["RS256"]` when none are.
    algs: Vec<String>,
}

/// One successfully fetched key set.
#[derive(Debug)]
struct Snapshot {
    jwks: Jwks,
    algs: Vec<String>,
    fetched_at: i64,
    generation: u64,
}

#[derive(Debug, Default)]
struct State {
    discovery: Option<Arc<Discovery>>,
    snapshot: Option<Arc<Snapshot>>,
    generation: u64,
    last_attempt: Option<i64>,
    last_error: Option<TokenError>,
    in_flight: bool,
    waiters: Vec<Waker>,
}

/// The discovery result and keys of one trusted issuer.
#[derive(Debug)]
pub struct IssuerKeys {
    issuer: String,
    policy: CachePolicy,
    state: Mutex<State>,
    last_used: AtomicI64,
}

enum Step {
    Use(Arc<Snapshot>),
    Fail(TokenError),
    Wait,
    Fetch(Option<Arc<Discovery>>),
}

impl IssuerKeys {
    /// Empty state for the issuer with this URL (exactly as tokens' `iss` spell it).
    pub fn new(issuer: impl Into<String>, policy: CachePolicy) -> Self {
        Self {
            issuer: issuer.into(),
            policy,
            state: Mutex::default(),
            last_used: AtomicI64::new(i64::MIN),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` as issued by this issuer for `audience`, at time `now` (Unix
    /// seconds) with `leeway` seconds of clock skew, fetching or refreshing keys as the
    /// policy says.
    ///
    /// # Errors
    /// Why the token was refused; [`TokenError::is_unavailable`] when the issuer's
    /// discovery document or keys could not be obtained.
    pub async fn verify<F: KeyFetcher>(
        &self,
        fetcher: &F,
        token: &str,
        audience: &str,
        leeway: i64,
        now: i64,
    ) -> Result<Claims, TokenError> {
        self.last_used.store(now, Ordering::Relaxed);
        let token = UnverifiedToken::parse(token)?;
        let snapshot = self.keys(fetcher, now, None).await?;
        let expected = |snap: &Snapshot| Expectations {
            issuer: self.issuer.clone(),
            audience: audience.to_owned(),
            now,
            leeway,
            allowed_algs: snap.algs.clone(),
        };
        match verify(&token, &snapshot.jwks, &expected(&snapshot)) {
            Err(e) if e.is_key_not_found() => {
                // As go-oidc does, refuse tokens with bad claims before refetching keys.
                check_claims(token.unverified_claims(), &expected(&snapshot))?;
                let fresh = self.keys(fetcher, now, Some(snapshot.generation)).await?;
                if fresh.generation == snapshot.generation {
                    return Err(e);
                }
                verify(&token, &fresh.jwks, &expected(&fresh))
            }
            result => result,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Current keys, fetched first if missing, stale, or (with `newer_than`) if no fetch
    /// has completed since that generation.
    async fn keys<F: KeyFetcher>(
        &self,
        fetcher: &F,
        now: i64,
        newer_than: Option<u64>,
    ) -> Result<Arc<Snapshot>, TokenError> {
        loop {
            let step = self.step(now, newer_than);
            match step {
                Step::Use(snapshot) => return Ok(snapshot),
                Step::Fail(e) => return Err(e),
                Step::Wait => InFlight { keys: self }.await,
                Step::Fetch(discovery) => {
                    // Clears `in_flight` and wakes waiters even if this future is dropped.
                    let _flight = FlightGuard { keys: self };
                    let (discovery, jwks) = self.fetch(fetcher, discovery).await;
                    return self.store(discovery, jwks, now);
                }
            }
        }
    }

    /// Decides, under the lock, what [`IssuerKeys::keys`] does next.
    fn step(&self, now: i64, newer_than: Option<u64>) -> Step {
        let mut st = self.lock();
        if st.in_flight {
            return Step::Wait;
        }
        if let Some(snap) = &st.snapshot {
            let stale = now.saturating_sub(snap.fetched_at) >= self.policy.jwks_ttl;
            let wanted_newer = newer_than == Some(snap.generation);
            if !stale && !wanted_newer {
                return Step::Use(Arc::clone(snap));
            }
        }
        let rate_limited = st.last_attempt.is_some_and(|t| {
            (0..self.policy.min_refetch_interval).contains(&now.saturating_sub(t))
        });
        if rate_limited {
            return match (&st.snapshot, &st.last_error) {
                (Some(snap), _) => Step::Use(Arc::clone(snap)),
                (None, Some(e)) => Step::Fail(e.clone()),
                (None, None) => Step::Fail(TokenError::KeysUnavailable(
                    "issuer keys were fetched too recently to retry".to_owned(),
                )),
            };
        }
        st.in_flight = true;
        st.last_attempt = Some(now);
        Step::Fetch(st.discovery.clone())
    }

    /// Discovery and the key set; never holds the lock. Discovery is redone with every
    /// key fetch (the algorithms or `jwks_uri` may change in a rotation); when it fails
    /// the previous document, if any, is used.
    async fn fetch<F: KeyFetcher>(
        &self,
        fetcher: &F,
        discovery: Option<Arc<Discovery>>,
    ) -> (Option<Arc<Discovery>>, Result<Jwks, TokenError>) {
        let discovery = match (self.discover(fetcher).await, discovery) {
            (Ok(d), _) => Arc::new(d),
            (Err(_), Some(previous)) => previous,
            (Err(e), None) => return (None, Err(e)),
        };
        let jwks = match fetcher.get(&discovery.jwks_uri).await {
            Ok(body) => Jwks::from_json(&body),
            Err(e) => Err(TokenError::KeysUnavailable(format!(
                "fetching {}: {e}",
                discovery.jwks_uri
            ))),
        };
        (Some(discovery), jwks)
    }

    /// OpenID Connect Discovery §4: GET `<issuer>/.well-known/openid-configuration` (one
    /// trailing slash of the issuer dropped), whose `issuer` must equal ours exactly (§4.3).
    async fn discover<F: KeyFetcher>(&self, fetcher: &F) -> Result<Discovery, TokenError> {
        #[derive(Deserialize)]
        struct Document {
            issuer: String,
            jwks_uri: String,
            #[serde(default)]
            id_token_signing_alg_values_supported: Vec<String>,
        }
        let base = self.issuer.strip_suffix('/').unwrap_or(&self.issuer);
        let url = format!("{base}/.well-known/openid-configuration");
        let body = fetcher
            .get(&url)
            .await
            .map_err(|e| TokenError::DiscoveryFailed(format!("fetching {url}: {e}")))?;
        let doc: Document = serde_json::from_slice(&body).map_err(|e| {
            TokenError::DiscoveryFailed(format!("{url} is not a discovery document: {e}"))
        })?;
        if doc.issuer != self.issuer {
            return Err(TokenError::DiscoveryIssuerMismatch {
                expected: self.issuer.clone(),
                actual: doc.issuer,
            });
        }
        if doc.jwks_uri.is_empty() {
            return Err(TokenError::DiscoveryFailed(format!(
                "{url} has an empty jwks_uri"
            )));
        }
        // As go-oidc: keep the advertised algorithms we implement (so never none or HS*),
        // and fall back to the mandatory RS256 when that leaves nothing.
        let mut algs: Vec<String> = doc
            .id_token_signing_alg_values_supported
            .into_iter()
            .filter(|a| Algorithm::from_name(a).is_some())
            .collect();
        if algs.is_empty() {
            algs.push(super::DEFAULT_ALG.to_owned());
        }
        Ok(Discovery {
            jwks_uri: doc.jwks_uri,
            algs,
        })
    }

    /// Records a fetch outcome; a failure keeps the previous keys when there are any.
    fn store(
        &self,
        discovery: Option<Arc<Discovery>>,
        jwks: Result<Jwks, TokenError>,
        now: i64,
    ) -> Result<Arc<Snapshot>, TokenError> {
        let mut st = self.lock();
        if discovery.is_some() {
            st.discovery.clone_from(&discovery);
        }
        match (jwks, discovery) {
            (Ok(jwks), Some(discovery)) => {
                st.generation += 1;
                let snapshot = Arc::new(Snapshot {
                    jwks,
                    algs: discovery.algs.clone(),
                    fetched_at: now,
                    generation: st.generation,
                });
                st.snapshot = Some(Arc::clone(&snapshot));
                st.last_error = None;
                Ok(snapshot)
            }
            (Err(e), _) => {
                st.last_error = Some(e.clone());
                st.snapshot.clone().ok_or(e)
            }
            (Ok(_), None) => Err(TokenError::DiscoveryFailed(
                "no discovery document".to_owned(),
            )),
        }
    }
}

/// Marks the end of a fetch: clears `in_flight` and wakes the callers waiting on it.
struct FlightGuard<'a> {
    keys: &'a IssuerKeys,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.keys.lock();
            st.in_flight = false;
            std::mem::take(&mut st.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// Resolves once no fetch is in flight for this issuer.
struct InFlight<'a> {
    keys: &'a IssuerKeys,
}

impl Future for InFlight<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.keys.lock();
        if !st.in_flight {
            return Poll::Ready(());
        }
        if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            st.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Keys of every issuer in use, by issuer URL, sharing one fetcher.
#[derive(Debug)]
pub struct KeyCache<F> {
    fetcher: F,
    policy: CachePolicy,
    issuers: RwLock<HashMap<String, Arc<IssuerKeys>>>,
}

impl<F: KeyFetcher> KeyCache<F> {
    /// An empty cache.
    pub fn new(fetcher: F, policy: CachePolicy) -> Self {
        Self {
            fetcher,
            policy,
            issuers: RwLock::default(),
        }
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    /// The state for `issuer`, created empty if new. Beyond
    /// [`CachePolicy::max_issuers`] the least recently used issuer is forgotten.
    pub fn issuer(&self, issuer: &str) -> Arc<IssuerKeys> {
        if let Some(keys) = self
            .issuers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(issuer)
        {
            return Arc::clone(keys);
        }
        let mut map = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = map.get(issuer) {
            return Arc::clone(keys);
        }
        while map.len() >= self.policy.max_issuers.max(1) {
            let oldest = map
                .iter()
                .min_by_key(|(_, k)| k.last_used.load(Ordering::Relaxed))
                .map(|(url, _)| url.clone());
            match oldest {
                Some(url) => map.remove(&url),
                None => break,
            };
        }
        let keys = Arc::new(IssuerKeys::new(issuer, self.policy));
        map.insert(issuer.to_owned(), Arc::clone(&keys));
        keys
    }

    /// [`IssuerKeys::verify`] for the issuer with URL `issuer`. The caller has already
    /// decided, from the token's unverified `iss`, that this issuer is trusted.
    ///
    /// # Errors
    /// As [`IssuerKeys::verify`].
    pub async fn verify(
        &self,
        issuer: &str,
        token: &str,
        audience: &str,
        leeway: i64,
        now: i64,
    ) -> Result<Claims, TokenError> {
        self.issuer(issuer)
            .verify(&self.fetcher, token, audience, leeway, now)
            .await
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
