//! Which redirect URIs a client may name (RFC 6749 §3.1.2, RFC 8252 §7.3 and §8.3).
//!
//! The public client `sigstore` registers no URIs; like Dex's `validateRedirectURI` it
//! may use the out-of-band URN or an `http` URI on a loopback host (`localhost`,
//! `127.0.0.1`, `[::1]`) with any port and path — cosign and sigstore-python listen on
//! `http://localhost:<ephemeral port>/auth/callback`. A client with registered URIs may
//! use exactly those, except that a registered loopback URI matches on any port.

/// The out-of-band redirect: the page shows the code for the user to paste.
pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    #[error("redirect_uri {0:?} is not allowed for this client")]
    NotAllowed(String),
}

/// Where the authorization response goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    OutOfBand,
    Uri(String),
}

/// Splits `http://host[:port]/path...` into (host, path-and-query); other schemes and
/// user-info are refused.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') || path.contains('#') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (h, port) = v6.split_once(']')?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        h
    } else {
        match authority.split_once(':') {
            Some((h, port)) if valid_port(port) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1").then_some((host, path))
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// Decides whether `requested` may receive the authorization response.
pub fn check(registered: &[String], requested: &str) -> Result<Redirect, RedirectError> {
    let refuse = || RedirectError::NotAllowed(requested.to_string());
    // a URI goes into a Location header: control characters (a CR/LF header injection,
    // or just a value no header may hold), spaces and non-ASCII are refused up front
    if requested.is_empty()
        || requested.len() > 2048
        || !requested.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(refuse());
    }
    if requested == OOB {
        return if registered.is_empty() || registered.iter().any(|r| r == OOB) {
            Ok(Redirect::OutOfBand)
        } else {
            Err(refuse())
        };
    }
    if registered.is_empty() {
        return loopback_parts(requested)
            .map(|_| Redirect::Uri(requested.to_string()))
            .ok_or_else(refuse);
    }
    let allowed = registered.iter().any(|r| {
        r == requested
            || matches!(
                (loopback_parts(r), loopback_parts(requested)),
                (Some((rh, rp)), Some((qh, qp))) if rh == qh && rp == qp
            )
    });
    if allowed {
        Ok(Redirect::Uri(requested.to_string()))
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_spaces_are_refused() {
        for bad in [
            "http://localhost:8080/cb\r\nSet-Cookie: x=y",
            "http://localhost:8080/c\u{7f}b",
            "http://localhost:8080/c b",
            "http://localhost:8080/c\tb",
            "http://localhost:8080/\u{e9}",
            "",
        ] {
            assert!(check(&[], bad).is_err(), "{bad:?}");
            assert!(
                check(&[bad.to_string()], bad).is_err(),
                "registered {bad:?}"
            );
        }
    }

    #[test]
    fn public_client_gets_any_loopback_and_oob() {
        for ok in [
            "http://localhost:53122/auth/callback",
            "http://127.0.0.1:1/auth/callback",
            "http://[::1]:8080/cb?x=1",
            "http://localhost/auth/callback",
        ] {
            assert_eq!(check(&[], ok), Ok(Redirect::Uri(ok.into())), "{ok}");
        }
        assert_eq!(check(&[], OOB), Ok(Redirect::OutOfBand));
        for bad in [
            "https://evil.example/cb",
            "http://evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://localhost@evil.example/cb",
            "http://evil.example@localhost:80/cb",
            "http://127.0.0.1:99999/cb",
            "http://127.0.0.1:x/cb",
            "http://localhost:80/cb#frag",
            "javascript:alert(1)",
            "//localhost/cb",
            "",
        ] {
            assert!(check(&[], bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registered_uris_match_exactly_but_loopback_on_any_port() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://localhost:8000/auth/callback".to_string(),
        ];
        assert!(check(&reg, "https://app.example/cb").is_ok());
        assert!(check(&reg, "https://app.example/cb2").is_err());
        assert!(check(&reg, "http://localhost:41000/auth/callback").is_ok());
        assert!(check(&reg, "http://localhost:41000/other").is_err());
        assert!(check(&reg, "http://127.0.0.1:41000/auth/callback").is_err());
        assert!(check(&reg, OOB).is_err());
    }
}
