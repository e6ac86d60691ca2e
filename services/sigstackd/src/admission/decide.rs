//! Deciding whether an image may run: the ClusterImagePolicies whose globs match it must
//! all pass (each through any one of its authorities), checked by `sigstack verify`'s own
//! code ([`sigstack::attached::Check`]) on the digest its tag resolves to. A decision is
//! kept per digest and policy set for a while; registry failures are not kept.

use super::cip::{Authority, AuthorityKind, Cip, Mode};
use sigstack::attached::{Check, Sites};
use sigstack::policy::Verdict;
use sigstack::registry::{Registry, RegistryArgs};
use sigstack::trust::Material;
use sigstack::verify::Options;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What happens to an image no policy matches (policy-controller's `no-match-policy`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum NoMatch {
    Deny,
    Warn,
    Allow,
}

/// What happens when a registry cannot be reached.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum OnFailure {
    /// Deny, saying why (the default).
    Closed,
    /// Admit, with a warning.
    Open,
}

/// The verdict on one image: denied if there are errors.
#[derive(Clone, Debug, Default)]
pub struct ImageVerdict {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The digest it was checked at.
    pub digest: Option<String>,
}

/// The policies in force, with a generation that changes whenever they (or the trust
/// material) do, so that cached decisions of an older set are never used.
pub struct PolicySet {
    pub cips: Vec<Cip>,
    pub generation: u64,
}

/// Entries kept at most in the decision cache.
const CACHE_ENTRIES: usize = 65_536;

pub struct Engine {
    pub policies: RwLock<Arc<PolicySet>>,
    pub trust: RwLock<Arc<Material>>,
    pub roots: HashMap<String, Arc<Material>>,
    registries: Mutex<HashMap<Vec<String>, Arc<Registry>>>,
    registry_args: RegistryArgs,
    cache: Mutex<HashMap<String, (Instant, Arc<ImageVerdict>)>>,
    pub ttl: Duration,
    pub no_match: NoMatch,
    pub on_failure: OnFailure,
    generation: AtomicU64,
}

/// A failed authority: why, and whether the failure may pass (a registry or network
/// error, not a verdict).
struct Failure {
    why: String,
    transient: bool,
}

fn failed(why: impl Into<String>) -> Failure {
    Failure {
        why: why.into(),
        transient: false,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Engine {
    pub fn new(
        cips: Vec<Cip>,
        trust: Material,
        roots: HashMap<String, Material>,
        registry_args: RegistryArgs,
        ttl: Duration,
        no_match: NoMatch,
        on_failure: OnFailure,
    ) -> Self {
        Self {
            policies: RwLock::new(Arc::new(PolicySet {
                cips,
                generation: 1,
            })),
            trust: RwLock::new(Arc::new(trust)),
            roots: roots.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            registries: Mutex::new(HashMap::new()),
            registry_args,
            cache: Mutex::new(HashMap::new()),
            ttl,
            no_match,
            on_failure,
            generation: AtomicU64::new(1),
        }
    }

    /// Puts a new policy set in force.
    pub fn set_policies(&self, cips: Vec<Cip>) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut p) = self.policies.write() {
            *p = Arc::new(PolicySet { cips, generation });
        }
    }

    /// Puts new trust material in force (and forgets every decision).
    pub fn set_trust(&self, m: Material) {
        if let Ok(mut t) = self.trust.write() {
            *t = Arc::new(m);
        }
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    pub fn policy_set(&self) -> Arc<PolicySet> {
        self.policies
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn registry(&self, hosts: Vec<String>) -> anyhow::Result<Arc<Registry>> {
        let mut map = self
            .registries
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?;
        if let Some(r) = map.get(&hosts) {
            return Ok(r.clone());
        }
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let r = Arc::new(Registry::new(&self.registry_args, &refs)?);
        if map.len() > 1024 {
            map.clear();
        }
        map.insert(hosts, r.clone());
        Ok(r)
    }

    fn cached(&self, key: &str) -> Option<Arc<ImageVerdict>> {
        let c = self.cache.lock().ok()?;
        let (at, v) = c.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    fn keep(&self, key: String, v: Arc<ImageVerdict>) {
        let Ok(mut c) = self.cache.lock() else {
            return;
        };
        if c.len() >= CACHE_ENTRIES {
            let ttl = self.ttl;
            c.retain(|_, (at, _)| at.elapsed() < ttl);
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
        }
        c.insert(key, (Instant::now(), v));
    }

    /// The digest `image` names now (a tag resolved at its registry).
    pub async fn resolve(
        &self,
        image: &str,
    ) -> Result<(sigstack::registry::Reference, String), String> {
        let r = sigstack::registry::parse(image)
            .map_err(|e| format!("{image} is not an image reference: {e:#}"))?;
        let reg = self
            .registry(vec![r.resolve_registry().to_string()])
            .map_err(|e| format!("{e:#}"))?;
        let digest = reg
            .digest(&r)
            .await
            .map_err(|e| format!("resolving {image} at its registry: {e:#}"))?;
        Ok((r, digest))
    }

    /// The verdict on one image.
    pub async fn check(&self, image: &str) -> Arc<ImageVerdict> {
        let set = self.policy_set();
        let matching: Vec<usize> = (0..set.cips.len())
            .filter(|&i| set.cips[i].matches(image))
            .collect();
        if matching.is_empty() {
            let why = format!("{image} matches no ClusterImagePolicy (no matching policies)");
            return Arc::new(match self.no_match {
                NoMatch::Deny => ImageVerdict {
                    errors: vec![why],
                    ..Default::default()
                },
                NoMatch::Warn => ImageVerdict {
                    warnings: vec![why],
                    ..Default::default()
                },
                NoMatch::Allow => ImageVerdict::default(),
            });
        }
        let (r, digest) = match self.resolve(image).await {
            Ok(x) => x,
            Err(e) => return Arc::new(self.unreachable(e)),
        };
        let key = format!(
            "{}|{}/{}@{digest}|{matching:?}",
            set.generation,
            r.resolve_registry(),
            r.repository()
        );
        if let Some(v) = self.cached(&key) {
            return v;
        }
        let mut verdict = ImageVerdict {
            digest: Some(digest.clone()),
            ..Default::default()
        };
        let mut transient = false;
        for &i in &matching {
            let cip = &set.cips[i];
            let mut failures = Vec::new();
            let mut passed = false;
            for a in &cip.authorities {
                match self.authority(a, &r, &digest).await {
                    Ok(warnings) => {
                        verdict.warnings.extend(warnings);
                        passed = true;
                        break;
                    }
                    Err(f) => {
                        transient |= f.transient;
                        failures.push(format!("authority {}: {}", a.name, f.why));
                    }
                }
            }
            if passed {
                continue;
            }
            let why = format!(
                "{image} fails ClusterImagePolicy {}: {}",
                cip.name,
                failures.join("; ")
            );
            match cip.mode {
                Mode::Enforce => verdict.errors.push(why),
                Mode::Warn => verdict.warnings.push(format!("(mode warn) {why}")),
            }
        }
        if transient && !verdict.errors.is_empty() && self.on_failure == OnFailure::Open {
            verdict.warnings.append(&mut verdict.errors);
            verdict
                .warnings
                .push(format!("{image} was admitted although its registry could not be read (registry failures admit: --registry-failure open)"));
        }
        let v = Arc::new(verdict);
        if !transient {
            self.keep(key, v.clone());
        }
        v
    }

    fn unreachable(&self, why: String) -> ImageVerdict {
        match self.on_failure {
            OnFailure::Closed => ImageVerdict {
                errors: vec![format!(
                    "{why} (failing closed: the image cannot be checked, so it is not admitted)"
                )],
                ..Default::default()
            },
            OnFailure::Open => ImageVerdict {
                warnings: vec![format!(
                    "{why} (admitted unchecked: --registry-failure open)"
                )],
                ..Default::default()
            },
        }
    }

    /// One authority's verdict: Ok with any warnings, or why not.
    async fn authority(
        &self,
        a: &Authority,
        r: &sigstack::registry::Reference,
        digest: &str,
    ) -> Result<Vec<String>, Failure> {
        let (policies, trust_root, ignore_sct) = match &a.kind {
            AuthorityKind::Static { pass: true, .. } => return Ok(Vec::new()),
            AuthorityKind::Static {
                pass: false,
                message,
            } => {
                return Err(failed(if message.is_empty() {
                    "disallowed by static policy".to_string()
                } else {
                    format!("disallowed by static policy: {message}")
                }));
            }
            AuthorityKind::Key(k) => (vec![sigstack::verify::Policy::Key(k.clone())], None, false),
            AuthorityKind::Keyless {
                policies,
                trust_root,
                ignore_sct,
            } => (policies.clone(), trust_root.as_deref(), *ignore_sct),
        };
        let material = match trust_root {
            None => self
                .trust
                .read()
                .map(|t| t.clone())
                .map_err(|_| failed("the trust material is unavailable"))?,
            Some(name) => self.roots.get(name).cloned().ok_or_else(|| {
                failed(format!(
                    "trustRootRef {name} names no trust root this webhook has (give it with --trust-root {name}=trusted_root.json)"
                ))
            })?,
        };
        let mut hosts = vec![r.resolve_registry().to_string()];
        if let Some(s) = &a.source {
            hosts.push(s.resolve_registry().to_string());
        }
        let reg = self.registry(hosts).map_err(|e| failed(format!("{e:#}")))?;
        let sites = Sites::new(r, digest, a.source.as_ref());
        let opts = Options {
            ignore_sct,
            ..Default::default()
        };
        let mut why = Vec::new();
        for policy in &policies {
            let check = Check {
                reg: &reg,
                sites: &sites,
                material: &material,
                policy,
                opts: &opts,
                rekor_url: None,
                offline: false,
                now: unix_now(),
                layouts: a.layouts,
            };
            let outcome = if a.attestations.is_empty() {
                signatures(&check).await
            } else {
                attestations(&check, a).await
            };
            match outcome {
                Ok(warnings) => return Ok(warnings),
                Err(f) if f.transient => return Err(f),
                Err(f) => why.push(f.why),
            }
        }
        why.dedup();
        Err(failed(why.join("; ")))
    }
}

fn registry_failure(e: anyhow::Error) -> Failure {
    Failure {
        why: format!("reading the registry: {e:#}"),
        transient: true,
    }
}

async fn signatures(check: &Check<'_>) -> Result<Vec<String>, Failure> {
    let s = check.signatures(&[]).await.map_err(registry_failure)?;
    if !s.verified.is_empty() {
        return Ok(Vec::new());
    }
    if s.found == 0 {
        return Err(failed(format!(
            "no signatures found for {} (sign it with `sigstack sign` or `cosign sign`)",
            check.sites.image
        )));
    }
    Err(failed(format!(
        "none of its {} signature(s) verifies: {}",
        s.found,
        s.failures.join(" | ")
    )))
}

async fn attestations(check: &Check<'_>, a: &Authority) -> Result<Vec<String>, Failure> {
    let found = check.attestations(None).await.map_err(registry_failure)?;
    if found.verified.is_empty() {
        return Err(failed(if found.failures.is_empty() {
            format!(
                "no attestations found for {} (attest with `sigstack attest` or `cosign attest`)",
                check.sites.image
            )
        } else {
            format!(
                "none of its attestations verifies: {}",
                found.failures.join(" | ")
            )
        }));
    }
    let mut warnings = Vec::new();
    for want in &a.attestations {
        let mut first_denial = None;
        let mut satisfied = false;
        let mut seen = Vec::new();
        for (from, st) in &found.verified {
            let t = st["predicateType"].as_str().unwrap_or_default();
            seen.push(t.to_string());
            if t != want.predicate_type {
                continue;
            }
            match want.policy.as_ref().map(|p| p.check(st)) {
                None | Some(Verdict::Allow) => {
                    satisfied = true;
                    break;
                }
                Some(Verdict::Warn(w)) => {
                    warnings.push(w);
                    satisfied = true;
                    break;
                }
                Some(Verdict::Deny(d)) => {
                    first_denial.get_or_insert(format!("{from}: {d}"));
                }
            }
        }
        if satisfied {
            continue;
        }
        seen.sort();
        seen.dedup();
        return Err(failed(match first_denial {
            Some(d) => format!("attestation {}: {d}", want.name),
            None => format!(
                "attestation {}: no verified attestation of type {} (verified types: {})",
                want.name,
                want.predicate_type,
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ),
        }));
    }
    Ok(warnings)
}
