//! Pending grants, in memory and with the clock injected: authorization codes (RFC 6749
//! §4.1, single use, short-lived, bound to client, redirect URI and PKCE challenge) and
//! device codes (RFC 8628 §3.2–3.5, with `authorization_pending`, `slow_down`,
//! `access_denied` and `expired_token`).

use crate::pkce;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

/// What the user approved; becomes an ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    /// The user's stable identity (our `sub`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the e-mail address is verified: local accounts' are; a federated user's
    /// only if the upstream said so (a connector that skips the check does not make it so).
    pub email_verified: bool,
    /// Display name, when known.
    pub name: Option<String>,
    pub nonce: Option<String>,
    /// Upstream issuer for federated users, our issuer for local ones.
    pub connector_id: String,
    /// The user's id at that issuer (the upstream `sub`, or the local user name).
    pub user_id: String,
}

/// Most grants of one kind pending at once: past this, new ones are refused (requests
/// that create them are unauthenticated and must not grow memory without bound).
pub const MAX_PENDING: usize = 10_000;
/// Most of them one owner (a client address, or IPv6 /64) may hold: one place cannot fill
/// the table and lock everyone else out.
pub const MAX_PENDING_PER_OWNER: usize = 64;

/// Why nothing was stored.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Full {
    /// [`MAX_PENDING`] are pending.
    Everyone,
    /// This owner holds [`MAX_PENDING_PER_OWNER`].
    Owner,
}

/// Single-use values under unguessable handles with an expiry: consent prompts and
/// upstream sign-ins in flight.
pub struct Pending<T> {
    entries: HashMap<String, (T, i64, String)>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Stores `value` until `expires` for `owner`; nothing is stored when [`MAX_PENDING`]
    /// unexpired entries are held, or [`MAX_PENDING_PER_OWNER`] of them by this owner.
    pub fn insert(
        &mut self,
        handle: String,
        value: T,
        expires: i64,
        now: i64,
        owner: &str,
    ) -> Result<(), Full> {
        self.entries.retain(|_, (_, exp, _)| *exp >= now);
        if self.entries.len() >= MAX_PENDING {
            return Err(Full::Everyone);
        }
        if self.entries.values().filter(|(_, _, o)| o == owner).count() >= MAX_PENDING_PER_OWNER {
            return Err(Full::Owner);
        }
        self.entries
            .insert(handle, (value, expires, owner.to_string()));
        Ok(())
    }

    /// Removes and returns the value, if present and unexpired.
    pub fn take(&mut self, handle: &str, now: i64) -> Option<T> {
        match self.entries.remove(handle) {
            Some((v, exp, _)) if exp >= now => Some(v),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why a code or device poll was refused, as the OAuth error code names it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// RFC 6749 §5.2 `invalid_grant`: unknown, used, expired, or bound to another client
    /// or redirect URI; or the PKCE verifier does not match.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("authorization_pending")]
    AuthorizationPending,
    #[error("slow_down")]
    SlowDown,
    #[error("access_denied")]
    AccessDenied,
    #[error("expired_token")]
    ExpiredToken,
}

impl GrantError {
    /// The `error` value of the token endpoint's answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidGrant(_) => "invalid_grant",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
        }
    }
}

/// An opaque, unguessable handle from 32 random bytes.
pub fn handle(random: [u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The RFC 8628 §6.1 user code alphabet: no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// An 8-character user code `XXXX-XXXX` from random bytes (20^8 ≈ 2^34.6 codes).
pub fn user_code(random: [u8; 8]) -> String {
    let chars: Vec<char> = random
        .iter()
        .map(|b| USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char)
        .collect();
    format!(
        "{}-{}",
        chars[..4].iter().collect::<String>(),
        chars[4..].iter().collect::<String>()
    )
}

/// Normalises what a user typed: case, spaces and dashes do not matter.
pub fn normalize_user_code(typed: &str) -> String {
    let s: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.len() == 8 {
        format!("{}-{}", &s[..4], &s[4..])
    } else {
        s
    }
}

struct CodeEntry {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
    expires: i64,
}

/// Issued authorization codes.
#[derive(Default)]
pub struct Codes {
    codes: HashMap<String, CodeEntry>,
}

impl Codes {
    pub fn insert(
        &mut self,
        code: String,
        grant: Grant,
        redirect_uri: String,
        challenge: String,
        expires: i64,
    ) {
        self.codes.insert(
            code,
            CodeEntry {
                grant,
                redirect_uri,
                challenge,
                expires,
            },
        );
    }

    /// Redeems a code: it is removed whatever the outcome (a failed redemption burns it),
    /// then checked against the client, redirect URI, expiry and PKCE verifier.
    pub fn redeem(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        now: i64,
    ) -> Result<Grant, GrantError> {
        self.purge(now);
        let e = self
            .codes
            .remove(code)
            .ok_or(GrantError::InvalidGrant("unknown, used or expired code"))?;
        if e.expires < now {
            return Err(GrantError::InvalidGrant("the code has expired"));
        }
        if e.grant.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "the code was issued to another client",
            ));
        }
        if e.redirect_uri != redirect_uri {
            return Err(GrantError::InvalidGrant(
                "redirect_uri differs from the authorization request",
            ));
        }
        pkce::verify(verifier, &e.challenge).map_err(|_| {
            GrantError::InvalidGrant("code_verifier does not match the code_challenge")
        })?;
        Ok(e.grant)
    }

    fn purge(&mut self, now: i64) {
        self.codes.retain(|_, e| e.expires >= now);
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

enum DeviceState {
    Pending,
    Approved(Grant),
    Denied,
}

struct DeviceEntry {
    client_id: String,
    user_code: String,
    state: DeviceState,
    expires: i64,
    interval: i64,
    last_poll: Option<i64>,
    owner: String,
}

/// Device authorizations (RFC 8628).
#[derive(Default)]
pub struct Devices {
    by_device_code: HashMap<String, DeviceEntry>,
}

impl Devices {
    /// Records a new device authorization for `owner`; nothing is recorded when
    /// [`MAX_PENDING`] unexpired ones are pending, or [`MAX_PENDING_PER_OWNER`] of its own.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        device_code: String,
        user_code: String,
        client_id: String,
        expires: i64,
        interval: i64,
        now: i64,
        owner: &str,
    ) -> Result<(), Full> {
        self.by_device_code.retain(|_, e| e.expires >= now);
        if self.by_device_code.len() >= MAX_PENDING {
            return Err(Full::Everyone);
        }
        if self
            .by_device_code
            .values()
            .filter(|e| e.owner == owner)
            .count()
            >= MAX_PENDING_PER_OWNER
        {
            return Err(Full::Owner);
        }
        self.by_device_code.insert(
            device_code,
            DeviceEntry {
                client_id,
                user_code,
                state: DeviceState::Pending,
                expires,
                interval,
                last_poll: None,
                owner: owner.to_string(),
            },
        );
        Ok(())
    }

    /// The client that asked for the pending request showing `user_code`.
    pub fn client_of(&self, user_code: &str, now: i64) -> Option<String> {
        let code = normalize_user_code(user_code);
        self.by_device_code
            .values()
            .find(|e| {
                e.user_code == code && e.expires >= now && matches!(e.state, DeviceState::Pending)
            })
            .map(|e| e.client_id.clone())
    }

    /// The user approved (or denied, with `None`) the request showing `user_code`.
    /// Returns false if no pending request has that code.
    pub fn decide(&mut self, user_code: &str, grant: Option<Grant>, now: i64) -> bool {
        let code = normalize_user_code(user_code);
        let Some(e) = self.by_device_code.values_mut().find(|e| {
            e.user_code == code && e.expires >= now && matches!(e.state, DeviceState::Pending)
        }) else {
            return false;
        };
        e.state = match grant {
            Some(g) => DeviceState::Approved(g),
            None => DeviceState::Denied,
        };
        true
    }

    /// A token-endpoint poll (§3.4–3.5). Polling faster than the interval answers
    /// `slow_down` and adds 5 s to the interval; a granted or denied code is removed.
    pub fn poll(
        &mut self,
        device_code: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Grant, GrantError> {
        let e = self
            .by_device_code
            .get_mut(device_code)
            .ok_or(GrantError::InvalidGrant("unknown device code"))?;
        if e.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "the device code was issued to another client",
            ));
        }
        if e.expires < now {
            self.by_device_code.remove(device_code);
            return Err(GrantError::ExpiredToken);
        }
        if let Some(last) = e.last_poll
            && now - last < e.interval
        {
            e.interval += 5;
            e.last_poll = Some(now);
            return Err(GrantError::SlowDown);
        }
        e.last_poll = Some(now);
        match &e.state {
            DeviceState::Pending => Err(GrantError::AuthorizationPending),
            DeviceState::Denied => {
                self.by_device_code.remove(device_code);
                Err(GrantError::AccessDenied)
            }
            DeviceState::Approved(_) => match self.by_device_code.remove(device_code) {
                Some(DeviceEntry {
                    state: DeviceState::Approved(g),
                    ..
                }) => Ok(g),
                _ => Err(GrantError::InvalidGrant("unknown device code")),
            },
        }
    }
}

#[cfg(test)]
mod tests;
