use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use crate::token::testkeys::{AUDIENCE, ISSUER, NOW, TestKey, good_claims, jwks_document};

const DISCOVERY: &str = "https://issuer.example/.well-known/openid-configuration";
const JWKS: &str = "https://issuer.example/keys";
const LEEWAY: i64 = 60;

/// In-memory documents with a call counter per URL.
#[derive(Default)]
struct FakeFetcher {
    docs: Mutex<HashMap<String, Result<Vec<u8>, String>>>,
    calls: Mutex<HashMap<String, usize>>,
    /// Yield once before answering, so concurrent callers overlap.
    yield_first: bool,
}

impl FakeFetcher {
    fn serving(discovery: Value, keys: &[Value]) -> Self {
        let fetcher = Self::default();
        fetcher.set(DISCOVERY, discovery.to_string().into_bytes());
        fetcher.set(JWKS, jwks_document(keys));
        fetcher
    }

    fn set(&self, url: &str, body: Vec<u8>) {
        self.docs
            .lock()
            .expect("lock")
            .insert(url.to_owned(), Ok(body));
    }

    fn fail(&self, url: &str) {
        let err = Err("503 Service Unavailable".to_owned());
        self.docs.lock().expect("lock").insert(url.to_owned(), err);
    }

    fn calls(&self, url: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .get(url)
            .copied()
            .unwrap_or(0)
    }
}

impl KeyFetcher for FakeFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        *self
            .calls
            .lock()
            .expect("lock")
            .entry(url.to_owned())
            .or_default() += 1;
        if self.yield_first {
            tokio::task::yield_now().await;
        }
        let doc = self.docs.lock().expect("lock").get(url).cloned();
        match doc {
            Some(Ok(body)) => Ok(body),
            Some(Err(e)) => Err(FetchError::new(e)),
            None => Err(FetchError::new("404 Not Found")),
        }
    }
}

fn discovery(issuer: &str, algs: Option<&[&str]>) -> Value {
    let mut doc = json!({
        "issuer": issuer,
        "jwks_uri": JWKS,
        "authorization_endpoint": "https://issuer.example/auth",
    });
    if let Some(algs) = algs {
        doc["id_token_signing_alg_values_supported"] = json!(algs);
    }
    doc
}

/// Claims valid from `NOW - 10` for a day.
fn long_claims() -> Value {
    let mut claims = good_claims();
    claims["exp"] = json!(NOW + 86_400);
    claims
}

async fn check(
    keys: &IssuerKeys,
    fetcher: &FakeFetcher,
    token: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    keys.verify(fetcher, token, AUDIENCE, LEEWAY, now).await
}

fn issuer_keys() -> IssuerKeys {
    IssuerKeys::new(ISSUER, CachePolicy::default())
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let key = TestKey::p256();
    let fetcher = FakeFetcher::serving(
        discovery("https://other.example", Some(&["ES256"])),
        &[key.jwk("k1")],
    );
    let err = check(
        &issuer_keys(),
        &fetcher,
        &key.token(Some("k1"), &good_claims()),
        NOW,
    )
    .await
    .expect_err("must be refused");
    assert!(
        matches!(err, TokenError::DiscoveryIssuerMismatch { .. }),
        "{err}"
    );
    assert!(err.is_unavailable());
    assert_eq!(fetcher.calls(JWKS), 0);
}

#[tokio::test]
async fn trailing_slash_is_trimmed_for_discovery_only() {
    let issuer = "https://issuer.example/";
    let key = TestKey::ed25519();
    let fetcher = FakeFetcher::serving(discovery(issuer, Some(&["EdDSA"])), &[key.jwk("k1")]);
    let mut claims = good_claims();
    claims["iss"] = json!(issuer);
    let keys = IssuerKeys::new(issuer, CachePolicy::default());
    let claims = check(&keys, &fetcher, &key.token(Some("k1"), &claims), NOW)
        .await
        .expect("valid");
    assert_eq!(claims.issuer(), issuer);
    assert_eq!(fetcher.calls(DISCOVERY), 1);
}

#[tokio::test]
async fn key_set_is_fetched_once_for_many_tokens() {
    let key = TestKey::rsa();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, None), &[key.jwk("k1")]);
    let keys = issuer_keys();
    for i in 0..20 {
        let token = key.token(Some("k1"), &long_claims());
        check(&keys, &fetcher, &token, NOW + i)
            .await
            .expect("valid");
    }
    assert_eq!((fetcher.calls(DISCOVERY), fetcher.calls(JWKS)), (1, 1));
}

#[tokio::test]
async fn advertised_algorithms_are_enforced() {
    let rsa = TestKey::rsa();
    let ec = TestKey::p256();
    let doc = discovery(ISSUER, Some(&["ES256", "HS256", "none"]));
    let fetcher = FakeFetcher::serving(doc, &[rsa.jwk("r"), ec.jwk("e")]);
    let keys = issuer_keys();
    assert!(
        check(&keys, &fetcher, &ec.token(Some("e"), &good_claims()), NOW)
            .await
            .is_ok()
    );
    let err = check(&keys, &fetcher, &rsa.token(Some("r"), &good_claims()), NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(
        err,
        TokenError::AlgorithmNotAllowed {
            alg: "RS256".into(),
            allowed: vec!["ES256".into()]
        }
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once_and_finds_the_rotated_key() {
    let old = TestKey::p256();
    let new = TestKey::p256();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES256"])), &[old.jwk("old")]);
    let keys = issuer_keys();
    check(
        &keys,
        &fetcher,
        &old.token(Some("old"), &long_claims()),
        NOW,
    )
    .await
    .expect("valid");
    fetcher.set(JWKS, jwks_document(&[old.jwk("old"), new.jwk("new")]));
    let now = NOW + 30;
    let claims = check(
        &keys,
        &fetcher,
        &new.token(Some("new"), &long_claims()),
        now,
    )
    .await;
    assert!(claims.is_ok(), "{claims:?}");
    // discovery is redone with each key fetch
    assert_eq!((fetcher.calls(DISCOVERY), fetcher.calls(JWKS)), (2, 2));
    // Both keys now verify from the cache.
    check(
        &keys,
        &fetcher,
        &old.token(Some("old"), &long_claims()),
        now + 1,
    )
    .await
    .expect("old");
    check(
        &keys,
        &fetcher,
        &new.token(Some("new"), &long_claims()),
        now + 2,
    )
    .await
    .expect("new");
    assert_eq!(fetcher.calls(JWKS), 2);
}

#[tokio::test]
async fn garbage_kids_are_rate_limited() {
    let key = TestKey::p256();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES256"])), &[key.jwk("k1")]);
    let keys = issuer_keys();
    check(&keys, &fetcher, &key.token(Some("k1"), &long_claims()), NOW)
        .await
        .expect("valid");
    let garbage = |n: i64| key.token(Some(&format!("garbage-{n}")), &long_claims());
    // Right after the first fetch: no refetch at all.
    let err = check(&keys, &fetcher, &garbage(0), NOW + 1)
        .await
        .expect_err("must be refused");
    assert!(matches!(err, TokenError::UnknownKeyId { .. }), "{err}");
    assert_eq!(fetcher.calls(JWKS), 1);
    // Later: one refetch, then none for the next 10 seconds however many tokens come.
    for t in 20..30 {
        let err = check(&keys, &fetcher, &garbage(t), NOW + t)
            .await
            .expect_err("must be refused");
        assert!(matches!(err, TokenError::UnknownKeyId { .. }), "{err}");
    }
    assert_eq!(fetcher.calls(JWKS), 2);
    check(&keys, &fetcher, &garbage(30), NOW + 30)
        .await
        .expect_err("must be refused");
    assert_eq!(fetcher.calls(JWKS), 3);
    // Tokens whose claims fail anyway never cause a refetch.
    let mut expired = long_claims();
    expired["exp"] = json!(NOW);
    let err = check(
        &keys,
        &fetcher,
        &key.token(Some("nope"), &expired),
        NOW + 100,
    )
    .await
    .expect_err("must be refused");
    assert!(matches!(err, TokenError::Expired { .. }), "{err}");
    assert_eq!(fetcher.calls(JWKS), 3);
}

#[tokio::test]
async fn stale_key_set_is_refetched_after_the_ttl() {
    let key = TestKey::ed25519();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["EdDSA"])), &[key.jwk("k1")]);
    let keys = issuer_keys();
    let ttl = CachePolicy::default().jwks_ttl;
    let token = key.token(Some("k1"), &long_claims());
    check(&keys, &fetcher, &token, NOW).await.expect("valid");
    check(&keys, &fetcher, &token, NOW + ttl - 1)
        .await
        .expect("valid");
    assert_eq!(fetcher.calls(JWKS), 1);
    check(&keys, &fetcher, &token, NOW + ttl)
        .await
        .expect("valid");
    assert_eq!((fetcher.calls(DISCOVERY), fetcher.calls(JWKS)), (2, 2));
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys() {
    let key = TestKey::rsa();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["RS256"])), &[key.jwk("k1")]);
    let keys = issuer_keys();
    let ttl = CachePolicy::default().jwks_ttl;
    let token = key.token(Some("k1"), &long_claims());
    check(&keys, &fetcher, &token, NOW).await.expect("valid");
    fetcher.fail(JWKS);
    check(&keys, &fetcher, &token, NOW + ttl)
        .await
        .expect("served from the old set");
    assert_eq!(fetcher.calls(JWKS), 2);
    // Still stale, but the failed attempt is rate limited.
    check(&keys, &fetcher, &token, NOW + ttl + 5)
        .await
        .expect("old set");
    assert_eq!(fetcher.calls(JWKS), 2);
    // A garbage set (not JSON) counts as a failure too.
    fetcher.set(JWKS, b"<html>".to_vec());
    check(&keys, &fetcher, &token, NOW + ttl + 20)
        .await
        .expect("old set");
    assert_eq!(fetcher.calls(JWKS), 3);
}

#[tokio::test]
async fn failed_first_fetch_is_unavailable_and_retried_later() {
    let key = TestKey::p384();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES384"])), &[key.jwk("k1")]);
    fetcher.fail(DISCOVERY);
    let keys = issuer_keys();
    let token = key.token(Some("k1"), &long_claims());
    let err = check(&keys, &fetcher, &token, NOW)
        .await
        .expect_err("must be refused");
    assert!(
        matches!(err, TokenError::DiscoveryFailed(_)) && err.is_unavailable(),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("issuer discovery failed: "),
        "{err}"
    );
    // Within the interval the same error comes back without a fetch.
    assert_eq!(
        check(&keys, &fetcher, &token, NOW + 5)
            .await
            .expect_err("must be refused"),
        err
    );
    assert_eq!(fetcher.calls(DISCOVERY), 1);
    // Discovery recovers but the key set fails: still unavailable.
    fetcher.set(
        DISCOVERY,
        discovery(ISSUER, Some(&["ES384"])).to_string().into_bytes(),
    );
    fetcher.fail(JWKS);
    let err = check(&keys, &fetcher, &token, NOW + 10)
        .await
        .expect_err("must be refused");
    assert!(
        matches!(err, TokenError::KeysUnavailable(_)) && err.is_unavailable(),
        "{err}"
    );
    // Then the key set recovers (discovery is fetched with it again).
    fetcher.set(JWKS, jwks_document(&[key.jwk("k1")]));
    check(&keys, &fetcher, &token, NOW + 20)
        .await
        .expect("valid");
    assert_eq!((fetcher.calls(DISCOVERY), fetcher.calls(JWKS)), (3, 2));
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let key = TestKey::p256();
    let mut fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES256"])), &[key.jwk("k1")]);
    fetcher.yield_first = true;
    let keys = issuer_keys();
    let token = key.token(Some("k1"), &good_claims());
    let results = futures_join_all(
        (0..8)
            .map(|_| check(&keys, &fetcher, &token, NOW))
            .collect(),
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!((fetcher.calls(DISCOVERY), fetcher.calls(JWKS)), (1, 1));
}

/// Polls the futures concurrently on the current task (no `futures` dependency).
async fn futures_join_all<T, Fut: Future<Output = T>>(futs: Vec<Fut>) -> Vec<T> {
    let mut futs: Vec<Pin<Box<Fut>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (fut, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none()
                && let Poll::Ready(v) = fut.as_mut().poll(cx)
            {
                *slot = Some(v);
            }
        }
        if out.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[tokio::test]
async fn key_cache_keeps_issuers_apart_and_bounded() {
    let key = TestKey::p256();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES256"])), &[key.jwk("k1")]);
    let policy = CachePolicy {
        max_issuers: 2,
        ..CachePolicy::default()
    };
    let cache = KeyCache::new(fetcher, policy);
    let token = key.token(Some("k1"), &good_claims());
    let claims = cache
        .verify(ISSUER, &token, AUDIENCE, LEEWAY, NOW)
        .await
        .expect("valid");
    assert_eq!(claims.subject(), "alice");
    // The token's iss is not the issuer we are asked to verify against.
    let err = cache
        .verify("https://unknown.example", &token, AUDIENCE, LEEWAY, NOW)
        .await
        .expect_err("must be refused");
    assert!(err.is_unavailable(), "no discovery document there: {err}");
    assert!(Arc::ptr_eq(&cache.issuer(ISSUER), &cache.issuer(ISSUER)));
    // A third issuer evicts the least recently used one (the unknown one, used at NOW,
    // ties broken arbitrarily — so use ISSUER again first).
    cache
        .verify(ISSUER, &token, AUDIENCE, LEEWAY, NOW + 1)
        .await
        .expect("valid");
    let _ = cache.issuer("https://third.example");
    let map = cache.issuers.read().expect("lock");
    assert_eq!(map.len(), 2);
    assert!(map.contains_key(ISSUER));
    drop(map);
    assert_eq!(cache.fetcher().calls(JWKS), 1);
}

#[test]
fn cache_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let cache = KeyCache::new(FakeFetcher::default(), CachePolicy::default());
    send_sync(&cache);
    let fut = cache.verify(ISSUER, "t", AUDIENCE, LEEWAY, NOW);
    send(&fut);
}

#[tokio::test]
async fn rotation_to_another_algorithm_is_learned_from_fresh_discovery() {
    let old = TestKey::p256();
    let new = TestKey::rsa();
    let fetcher = FakeFetcher::serving(discovery(ISSUER, Some(&["ES256"])), &[old.jwk("old")]);
    let keys = issuer_keys();
    check(
        &keys,
        &fetcher,
        &old.token(Some("old"), &long_claims()),
        NOW,
    )
    .await
    .expect("valid");
    // the issuer rotates to RS256 and says so in its discovery document
    fetcher.set(
        DISCOVERY,
        discovery(ISSUER, Some(&["RS256", "ES256"]))
            .to_string()
            .into_bytes(),
    );
    fetcher.set(JWKS, jwks_document(&[new.jwk("new"), old.jwk("old")]));
    let now = NOW + 30;
    let claims = check(
        &keys,
        &fetcher,
        &new.token(Some("new"), &long_claims()),
        now,
    )
    .await;
    assert!(claims.is_ok(), "{claims:?}");
    check(
        &keys,
        &fetcher,
        &old.token(Some("old"), &long_claims()),
        now,
    )
    .await
    .expect("the old key still verifies");
    // a failed rediscovery keeps the last document
    fetcher.fail(DISCOVERY);
    let other = TestKey::p256();
    fetcher.set(JWKS, jwks_document(&[other.jwk("other"), new.jwk("new")]));
    check(
        &keys,
        &fetcher,
        &other.token(Some("other"), &long_claims()),
        now + 60,
    )
    .await
    .expect("keys refreshed with the previous discovery document");
}
