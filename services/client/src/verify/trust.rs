//! The trusted root, decoded once per verification: every log key, CT log key, CA chain
//! and timestamp-authority chain is parsed here and nowhere else, so a bundle's many
//! entries and timestamps cost no repeated decoding. A part that does not parse is kept
//! as its error and reported only if a bundle names it.

use super::{VerifyError, fail};
use crate::bundle::b64;
use sigstack_crypto::{Certificate, PublicKey};
use sigstack_types::time::parse_rfc3339;
use sigstack_types::trust::{
    CertificateAuthority, TimeRange, TransparencyLogInstance, TrustedRoot,
};

/// A `validFor` window in Unix seconds.
#[derive(Clone, Copy)]
pub struct Window {
    start: i64,
    end: Option<i64>,
}

impl Window {
    fn parse(r: &TimeRange) -> Result<Self, String> {
        let start = parse_rfc3339(&r.start)
            .ok_or_else(|| format!("trusted root: validFor.start {:?} is not a time", r.start))?;
        let end = match &r.end {
            Some(e) => Some(
                parse_rfc3339(e)
                    .ok_or_else(|| format!("trusted root: validFor.end {e:?} is not a time"))?,
            ),
            None => None,
        };
        Ok(Self { start, end })
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log or CT log of the trusted root.
pub struct Log<'a> {
    pub instance: &'a TransparencyLogInstance,
    id: Option<Vec<u8>>,
    key: Result<PublicKey, String>,
    window: Result<Window, String>,
}

impl<'a> Log<'a> {
    fn new(instance: &'a TransparencyLogInstance) -> Self {
        Self {
            instance,
            id: b64("logId.keyId", &instance.log_id.key_id).ok(),
            key: b64("publicKey.rawBytes", &instance.public_key.raw_bytes)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    PublicKey::from_spki_der(&d)
                        .map_err(|e| format!("trusted root: a log key does not parse: {e}"))
                }),
            window: Window::parse(&instance.public_key.valid_for),
        }
    }

    pub fn key(&self) -> Result<&PublicKey, VerifyError> {
        self.key.as_ref().map_err(|e| VerifyError(e.clone()))
    }

    /// Whether the key was valid at `t`.
    pub fn valid_at(&self, t: i64) -> Result<bool, VerifyError> {
        match &self.window {
            Ok(w) => Ok(w.contains(t)),
            Err(e) => fail(e),
        }
    }
}

/// A certificate authority or timestamp authority of the trusted root.
pub struct Authority {
    pub chain: Result<Vec<Certificate>, String>,
    pub window: Result<Window, String>,
}

impl Authority {
    fn new(ca: &CertificateAuthority) -> Self {
        Self {
            chain: ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| {
                    b64("certChain", &c.raw_bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|d| {
                            Certificate::from_der(&d).map_err(|e| {
                                format!("trusted root: a CA certificate does not parse: {e}")
                            })
                        })
                })
                .collect(),
            window: Window::parse(&ca.valid_for),
        }
    }
}

pub struct Trust<'a> {
    pub tlogs: Vec<Log<'a>>,
    pub ctlogs: Vec<Log<'a>>,
    pub cas: Vec<Authority>,
    pub tsas: Vec<Authority>,
}

impl<'a> Trust<'a> {
    pub fn new(root: &'a TrustedRoot) -> Self {
        Self {
            tlogs: root.tlogs.iter().map(Log::new).collect(),
            ctlogs: root.ctlogs.iter().map(Log::new).collect(),
            cas: root
                .certificate_authorities
                .iter()
                .map(Authority::new)
                .collect(),
            tsas: root
                .timestamp_authorities
                .iter()
                .map(Authority::new)
                .collect(),
        }
    }

    /// The trusted transparency log `log_id` names, with its key, valid at `t`.
    pub fn tlog(&self, log_id: &[u8], t: i64) -> Result<(&Log<'a>, &PublicKey), VerifyError> {
        let Some(log) = self.tlogs.iter().find(|l| l.id.as_deref() == Some(log_id)) else {
            return fail("the entry's log is not a trusted transparency log");
        };
        if !log.valid_at(t)? {
            return fail("the transparency log's key was not valid at the entry's time");
        }
        Ok((log, log.key()?))
    }

    /// The CT logs `log_id` names.
    pub fn ctlogs_named<'s>(&'s self, log_id: &'s [u8]) -> impl Iterator<Item = &'s Log<'a>> {
        self.ctlogs
            .iter()
            .filter(move |l| l.id.as_deref() == Some(log_id))
    }
}
