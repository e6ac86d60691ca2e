//! Local users and password checks: argon2id hashes in PHC string form (RFC 9106, the
//! form `argon2` tools print), and a failed-login limiter per user and per client address
//! with the clock injected, so guessing is slow and a locked-out user cannot be told apart
//! from a wrong password.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;

/// A user from the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    /// Login name (and `sub` of the token).
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub password_hash: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Wrong name or password, or too many recent failures: deliberately one message.
    #[error("invalid username or password")]
    Invalid,
    #[error("too many failed attempts; try again in {0} s")]
    Throttled(i64),
    #[error("password hash for {0} is not a valid argon2 PHC string")]
    BadHash(String),
}

/// Hashes a password with argon2id and the given 16-byte salt.
pub fn hash_password(password: &str, salt: [u8; 16]) -> Result<String, LoginError> {
    let salt = SaltString::encode_b64(&salt).map_err(|_| LoginError::BadHash("salt".into()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| LoginError::BadHash("new hash".into()))
}

/// Checks a password against a PHC hash (the comparison is constant-time in argon2).
pub fn check_password(user: &LocalUser, password: &str) -> Result<(), LoginError> {
    let parsed = PasswordHash::new(&user.password_hash)
        .map_err(|_| LoginError::BadHash(user.username.clone()))?;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .map_err(|_| LoginError::Invalid)
}

/// Failures allowed per key in one window before further attempts are refused.
pub const MAX_FAILURES: u32 = 5;
/// Window length in seconds.
pub const WINDOW: i64 = 300;

/// Counts failed logins per key (`user:<name>`, `addr:<ip>`) in fixed windows.
#[derive(Default)]
pub struct Limiter {
    failures: HashMap<String, (i64, u32)>,
}

impl Limiter {
    /// Whether `key` may try now; `Err` carries the seconds to wait.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        match self.failures.get(key) {
            Some((start, n)) if *n >= MAX_FAILURES && now < start + WINDOW => {
                Err(start + WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&mut self, key: &str, now: i64) {
        if self.failures.len() > 100_000 {
            self.failures.retain(|_, (start, _)| now < *start + WINDOW);
        }
        let e = self.failures.entry(key.to_string()).or_insert((now, 0));
        if now >= e.0 + WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    pub fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// One login attempt: refused while either the user or the address is throttled; a
/// failure counts against both; a success clears the user's count.
pub fn attempt(
    users: &[LocalUser],
    limiter: &mut Limiter,
    username: &str,
    password: &str,
    address: &str,
    now: i64,
) -> Result<LocalUser, LoginError> {
    let (ukey, akey) = (format!("user:{username}"), format!("addr:{address}"));
    if let Err(wait) = limiter.check(&ukey, now).and(limiter.check(&akey, now)) {
        return Err(LoginError::Throttled(wait));
    }
    let found = users.iter().find(|u| u.username == username);
    let ok = match found {
        Some(u) => check_password(u, password),
        None => {
            // spend the same time as for a real user, so names cannot be probed by timing
            let _ = hash_password(password, [0; 16]);
            Err(LoginError::Invalid)
        }
    };
    match (ok, found) {
        (Ok(()), Some(u)) => {
            limiter.succeeded(&ukey);
            Ok(u.clone())
        }
        (Err(LoginError::BadHash(u)), _) => Err(LoginError::BadHash(u)),
        _ => {
            limiter.failed(&ukey, now);
            limiter.failed(&akey, now);
            Err(LoginError::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> LocalUser {
        LocalUser {
            username: "alice".into(),
            email: "alice@example.test".into(),
            name: None,
            password_hash: hash_password("correct horse", [7; 16]).expect("hash"),
        }
    }

    #[test]
    fn argon2id_hashes_check() {
        let u = alice();
        assert!(u.password_hash.starts_with("$argon2id$"));
        assert_eq!(check_password(&u, "correct horse"), Ok(()));
        assert_eq!(
            check_password(&u, "Correct horse"),
            Err(LoginError::Invalid)
        );
        let broken = LocalUser {
            password_hash: "plaintext".into(),
            ..u
        };
        assert!(matches!(
            check_password(&broken, "x"),
            Err(LoginError::BadHash(_))
        ));
    }

    #[test]
    fn failures_are_limited_per_user_and_address() {
        let users = vec![alice()];
        let mut l = Limiter::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(
                attempt(&users, &mut l, "alice", "guess", "10.0.0.1", 100 + i as i64),
                Err(LoginError::Invalid)
            );
        }
        // now even the right password is throttled, for this user from anywhere
        assert_eq!(
            attempt(&users, &mut l, "alice", "correct horse", "10.0.0.2", 110),
            Err(LoginError::Throttled(WINDOW - 10))
        );
        // and the address is throttled for other users too
        assert!(matches!(
            attempt(&users, &mut l, "bob", "x", "10.0.0.1", 110),
            Err(LoginError::Throttled(_))
        ));
        // after the window the right password works and clears the count
        assert_eq!(
            attempt(
                &users,
                &mut l,
                "alice",
                "correct horse",
                "10.0.0.3",
                100 + WINDOW
            )
            .map(|u| u.username),
            Ok("alice".to_string())
        );
        assert_eq!(
            attempt(&users, &mut l, "nobody", "x", "10.0.0.4", 1),
            Err(LoginError::Invalid)
        );
    }
}
