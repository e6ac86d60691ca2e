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

/// Whether `s` is an argon2 PHC string a password can be checked against.
pub fn is_password_hash(s: &str) -> bool {
    PasswordHash::new(s).is_ok_and(|h| {
        h.algorithm.as_str().starts_with("argon2") && h.salt.is_some() && h.hash.is_some()
    })
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

/// The longest user name looked at: longer ones fail without a password check.
pub const MAX_USERNAME: usize = 256;

/// Where an attempt comes from, as the limiter counts it: an IPv4 address, or the /64 an
/// IPv6 address is in (one host owns a whole /64).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn lock(l: &std::sync::Mutex<Limiter>) -> std::sync::MutexGuard<'_, Limiter> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// One login attempt. Failures count against the pair (user, address) and against the
/// address: someone guessing from one place is slowed down, while the account's owner
/// elsewhere still signs in (a user-wide lock would let anyone lock anyone out). The
/// password check (argon2, tens of milliseconds) runs outside the limiter's lock, so
/// logins do not queue behind each other; the lock is only held to read and count.
pub fn attempt(
    users: &[LocalUser],
    limiter: &std::sync::Mutex<Limiter>,
    username: &str,
    password: &str,
    ip: std::net::IpAddr,
    now: i64,
) -> Result<LocalUser, LoginError> {
    let addr = address_key(ip);
    let akey = format!("addr:{addr}");
    if username.len() > MAX_USERNAME {
        lock(limiter).failed(&akey, now);
        return Err(LoginError::Invalid);
    }
    let pkey = format!("user:{username}@{addr}");
    {
        let l = lock(limiter);
        if let Err(wait) = l.check(&pkey, now).and(l.check(&akey, now)) {
            return Err(LoginError::Throttled(wait));
        }
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
            lock(limiter).succeeded(&pkey);
            Ok(u.clone())
        }
        (Err(LoginError::BadHash(u)), _) => Err(LoginError::BadHash(u)),
        _ => {
            let mut l = lock(limiter);
            l.failed(&pkey, now);
            l.failed(&akey, now);
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
    fn password_hashes_are_recognised() {
        assert!(is_password_hash(&alice().password_hash));
        for bad in [
            "plaintext",
            "",
            "$2b$12$abcdefghijklmnopqrstuv",
            "$argon2id$broken",
        ] {
            assert!(!is_password_hash(bad), "{bad}");
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
    fn failures_are_limited_per_user_and_address_pair() {
        let users = vec![alice()];
        let l = std::sync::Mutex::new(Limiter::default());
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        for i in 0..MAX_FAILURES {
            assert_eq!(
                attempt(&users, &l, "alice", "guess", ip("10.0.0.1"), 100 + i as i64),
                Err(LoginError::Invalid)
            );
        }
        // the guesser is throttled, even with the right password ...
        assert_eq!(
            attempt(&users, &l, "alice", "correct horse", ip("10.0.0.1"), 110),
            Err(LoginError::Throttled(WINDOW - 10))
        );
        // ... and so is the guessing address for other users
        assert!(matches!(
            attempt(&users, &l, "bob", "x", ip("10.0.0.1"), 110),
            Err(LoginError::Throttled(_))
        ));
        // but the owner, elsewhere, signs in: nobody can lock an account out
        assert_eq!(
            attempt(&users, &l, "alice", "correct horse", ip("10.0.0.2"), 110).map(|u| u.username),
            Ok("alice".to_string())
        );
        // one IPv6 host owns its /64: other addresses in it share the count
        for i in 0..MAX_FAILURES {
            let _ = attempt(
                &users,
                &l,
                "alice",
                "guess",
                ip(&format!("2001:db8::{i}")),
                120,
            );
        }
        assert!(matches!(
            attempt(
                &users,
                &l,
                "alice",
                "correct horse",
                ip("2001:db8::ffff"),
                121
            ),
            Err(LoginError::Throttled(_))
        ));
        assert!(
            attempt(
                &users,
                &l,
                "alice",
                "correct horse",
                ip("2001:db8:0:1::1"),
                121
            )
            .is_ok()
        );
        // after the window the guesser's address may try again
        assert_eq!(
            attempt(
                &users,
                &l,
                "alice",
                "correct horse",
                ip("10.0.0.1"),
                100 + WINDOW
            )
            .map(|u| u.username),
            Ok("alice".to_string())
        );
        assert_eq!(
            attempt(&users, &l, "nobody", "x", ip("10.0.0.4"), 1),
            Err(LoginError::Invalid)
        );
        // an absurd user name is not looked at
        assert_eq!(
            attempt(
                &users,
                &l,
                &"a".repeat(MAX_USERNAME + 1),
                "x",
                ip("10.0.0.5"),
                1
            ),
            Err(LoginError::Invalid)
        );
    }
}
