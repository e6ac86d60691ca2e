//! The few pieces of Go's `net/url`, `path`, govalidator's `IsEmail` and go-spiffe's ID parsing
//! that Fulcio's principals and configuration checks depend on, with the same outcomes for the
//! inputs real tokens and configurations carry.
//!
//! Facts: Go `net/url` (`Parse`, `URL.Hostname`, `URL.JoinPath`, `URL.EscapedPath`), Go
//! `path.Clean`, `github.com/asaskevich/govalidator` `IsEmail`, `github.com/spiffe/go-spiffe/v2/spiffeid`.

/// A URL split the way Go's `url.Parse` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    /// Lower-cased scheme, empty when there is none (Go lower-cases it too).
    pub scheme: String,
    /// `scheme://authority` (or `scheme:` for opaque URLs); empty without a scheme.
    pub prefix: &'a str,
    /// The host without user info, port or IPv6 brackets (Go's `Hostname()`).
    pub host: &'a str,
    /// Whether the URL has a `//authority` part.
    pub has_authority: bool,
    /// The path, still escaped.
    pub path: &'a str,
    /// `?query#fragment`, verbatim.
    pub suffix: &'a str,
}

/// Parses `s` like Go's `url.Parse`; `None` where Go returns an error.
pub(crate) fn parse(s: &str) -> Option<Url<'_>> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) || !valid_escapes(s) {
        return None;
    }
    let (scheme, rest) = split_scheme(s)?;
    let rest_start = s.len() - rest.len();
    let cut = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before, suffix) = rest.split_at(cut);
    if !scheme.is_empty() && !before.starts_with('/') {
        // Opaque URL such as `mailto:x`: Go keeps it verbatim.
        return Some(Url {
            scheme: scheme.to_ascii_lowercase(),
            prefix: &s[..rest_start],
            host: "",
            has_authority: false,
            path: before,
            suffix,
        });
    }
    let (prefix_len, host, path, has_authority) = match before.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let authority = &after[..end];
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = hostname(host_port)?;
            (rest_start + 2 + end, host, &after[end..], true)
        }
        None => (rest_start, "", before, false),
    };
    Some(Url {
        scheme: scheme.to_ascii_lowercase(),
        prefix: &s[..prefix_len],
        host,
        has_authority,
        path,
        suffix,
    })
}

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None, // Go: "missing protocol scheme"
            b':' => return Some((&s[..i], &s[i + 1..])),
            _ => break,
        }
    }
    Some(("", s))
}

fn hostname(host_port: &str) -> Option<&str> {
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        let (ip, after) = inner.split_once(']')?;
        if !after.is_empty() && !is_port(after) {
            return None;
        }
        ip
    } else {
        match host_port.rfind(':') {
            Some(i) if is_port(&host_port[i..]) => &host_port[..i],
            Some(_) => return None, // Go: "invalid port"
            None => host_port,
        }
    };
    let host_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:<>\"%".contains(&b);
    host.bytes().all(host_char).then_some(host)
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Characters Go accepts verbatim in an already-escaped path (`validEncoded`).
fn valid_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@[]/".contains(&b)
}

/// Go's `EscapedPath` for a path given in escaped form: kept as is when it is a valid escaped
/// path, otherwise unescaped and escaped again with Go's path rules.
pub(crate) fn escape_path(p: &str) -> String {
    if p.bytes().all(|b| valid_in_path(b) || b == b'%') {
        return p.to_owned();
    }
    let go_keeps = |b: u8| b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b);
    let raw = unescape(p);
    let mut out = String::with_capacity(raw.len() * 3);
    for b in raw {
        if go_keeps(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(p: &str) -> Vec<u8> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Go's `url.Parse(s).String()` for an absolute URL: the path is re-escaped if needed.
pub(crate) fn normalize(s: &str) -> Option<String> {
    let u = parse(s)?;
    if !u.has_authority {
        return Some(s.to_owned());
    }
    Some(format!("{}{}{}", u.prefix, escape_path(u.path), u.suffix))
}

/// Go's `url.Parse(base).JoinPath(elems...).String()` for a base with an authority; `None` when
/// the base is not such a URL.
pub(crate) fn join_path(base: &str, elems: &[&str]) -> Option<String> {
    let u = parse(base)?;
    if !u.has_authority {
        return None;
    }
    let rooted = u.path.starts_with('/');
    let mut joined = String::from("/");
    joined.push_str(u.path);
    for e in elems.iter().filter(|e| !e.is_empty()) {
        joined.push('/');
        joined.push_str(e);
    }
    let mut p = clean(&joined);
    if !rooted {
        p.remove(0);
    }
    let last = elems.last().copied().unwrap_or(u.path);
    if last.ends_with('/') && !p.ends_with('/') {
        p.push('/');
    }
    let path = escape_path(&p);
    let slash = if !path.is_empty() && !path.starts_with('/') {
        "/"
    } else {
        ""
    };
    Some(format!("{}{slash}{path}{}", u.prefix, u.suffix))
}

/// Go's `path.Clean` for a rooted path.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether `s` is an e-mail address as govalidator's `IsEmail` sees it (ASCII forms; quoted
/// local parts are not accepted).
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    if local.is_empty()
        || !local
            .split('.')
            .all(|a| !a.is_empty() && a.bytes().all(atext))
    {
        return false;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&[u8]> = domain.split('.').map(str::as_bytes).collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    let label_ok = |l: &[u8], edge: fn(&u8) -> bool, inner: &[u8]| match (l.first(), l.last()) {
        (Some(f), Some(e)) => {
            edge(f)
                && edge(e)
                && l.iter()
                    .all(|b| b.is_ascii_alphanumeric() || inner.contains(b))
        }
        _ => false,
    };
    !rest.is_empty()
        && rest
            .iter()
            .all(|l| label_ok(l, u8::is_ascii_alphanumeric, b"-~"))
        && label_ok(tld, u8::is_ascii_alphabetic, b"-_~")
}

fn trust_domain_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)
}

/// The trust domain of a SPIFFE ID (`spiffe://td/path`), `None` if `id` is not a valid one.
pub(crate) fn spiffe_id_trust_domain(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("spiffe://")?;
    let (td, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if td.is_empty() || !td.bytes().all(trust_domain_char) {
        return None;
    }
    if path.is_empty() {
        return Some(td);
    }
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    path[1..].split('/').all(seg_ok).then_some(td)
}

/// go-spiffe `TrustDomainFromString`: a bare trust domain name or a SPIFFE ID.
pub(crate) fn spiffe_trust_domain(s: &str) -> Option<&str> {
    if s.contains(":/") {
        return spiffe_id_trust_domain(s);
    }
    (!s.is_empty() && s.bytes().all(trust_domain_char)).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_like_go() {
        let u = parse("HTTPS://user@Example.com:8443/a/b?q=1#f").expect("parses");
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "Example.com");
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.suffix, "?q=1#f");
        assert_eq!(u.prefix, "HTTPS://user@Example.com:8443");
        assert_eq!(parse("http://[::1]:80/").map(|u| u.host), Some("::1"));
        assert_eq!(parse("example.com").map(|u| u.scheme), Some(String::new()));
        assert_eq!(
            parse("localhost:8080").map(|u| u.scheme),
            Some("localhost".into())
        );
        assert!(parse(":foo").is_none());
        assert!(parse("http://a b/").is_none());
        assert!(parse("http://a:x/").is_none());
        assert!(parse("http://a/%zz").is_none());
        assert!(parse("http://a/\n").is_none());
    }

    #[test]
    fn join_path_matches_go() {
        let j = |b, e: &[&str]| join_path(b, e).expect("joins");
        assert_eq!(
            j(
                "https://github.com/",
                &["o/r/.github/w.yml@refs/heads/main"]
            ),
            "https://github.com/o/r/.github/w.yml@refs/heads/main"
        );
        assert_eq!(
            j("https://gitlab.com/", &["g/p", "/-/jobs/", "42"]),
            "https://gitlab.com/g/p/-/jobs/42"
        );
        assert_eq!(
            j("https://g.codefresh.io", &["build", "w1"]),
            "https://g.codefresh.io/build/w1"
        );
        assert_eq!(
            j("https://x.dev/base", &["a/../b", "./c/"]),
            "https://x.dev/base/b/c/"
        );
        assert_eq!(j("https://x.dev/", &["../../etc"]), "https://x.dev/etc");
        assert_eq!(j("https://x.dev/", &["a b"]), "https://x.dev/a%20b");
        assert_eq!(j("https://x.dev/", &["a!b c"]), "https://x.dev/a%21b%20c");
        assert_eq!(j("https://x.dev/?q", &["p"]), "https://x.dev/p?q");
        assert!(join_path("no-scheme", &["a"]).is_none());
        assert_eq!(
            normalize("https://h/ä").as_deref(),
            Some("https://h/%C3%A4")
        );
        assert_eq!(normalize("urn:x:y").as_deref(), Some("urn:x:y"));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com", "x@example.com."] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.co",
            "a@b",
            "a@b.c1",
            "a..b@c.de",
            "a@-b.de",
            "a b@c.de",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn spiffe_ids() {
        assert_eq!(
            spiffe_id_trust_domain("spiffe://example.org/ns/a"),
            Some("example.org")
        );
        assert_eq!(
            spiffe_id_trust_domain("spiffe://example.org"),
            Some("example.org")
        );
        for bad in [
            "spiffe://Example.org/a",
            "spiffe://example.org/",
            "spiffe://example.org/a//b",
            "spiffe://example.org/..",
            "SPIFFE://example.org/a",
            "https://example.org/a",
            "spiffe:///a",
        ] {
            assert_eq!(spiffe_id_trust_domain(bad), None, "{bad}");
        }
        assert_eq!(spiffe_trust_domain("example.org"), Some("example.org"));
        assert_eq!(
            spiffe_trust_domain("spiffe://example.org"),
            Some("example.org")
        );
        assert_eq!(spiffe_trust_domain("Example.org"), None);
        assert_eq!(spiffe_trust_domain(""), None);
    }
}
