//! The explorer's page frame: plain HTML and one stylesheet served by the monitor itself
//! (no scripts, no external assets: the stack may be air-gapped), landmarks, a skip link,
//! visible focus, and text colours that meet WCAG AA contrast.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use crate::oidc::pages::esc;

pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9;line-height:1.5}\
a{color:#1f4fbf}a:focus,button:focus,input:focus,summary:focus{outline:3px solid #f5a623;outline-offset:2px}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:9}\
header{background:#1d2330;color:#fff;padding:.8rem 1.2rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}header nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:1rem;margin:0;padding:0}\
header nav a{font-weight:400;text-decoration:underline}\
main{max-width:72rem;margin:0 auto;padding:1.2rem}\
h1{font-size:1.5rem;margin:.4rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}\
form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:0 0 1rem}\
form.search div{flex:1 1 18rem}label{display:block;font-size:.9rem;margin-bottom:.2rem}\
input[type=search],input[type=text]{width:100%;padding:.55rem .6rem;border:1px solid #6b7385;border-radius:6px;font-size:1rem}\
button{padding:.55rem 1rem;border:0;border-radius:6px;background:#2f4fc4;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#e4e7ee;color:#1d2330}\
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:1rem 1.2rem;margin:0 0 1rem}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e4e7ee;vertical-align:top}\
th{font-weight:600;background:#eef0f4}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88rem;word-break:break-all}\
dl{display:grid;grid-template-columns:minmax(8rem,14rem) 1fr;gap:.3rem 1rem;margin:0}dt{font-weight:600}dd{margin:0;word-break:break-word}\
.ok{color:#155d27;font-weight:600}.bad{color:#a3141a;font-weight:600}.muted{color:#4f5668}\
pre{background:#f0f2f6;padding:.8rem;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85rem}\
footer{max-width:72rem;margin:2rem auto;padding:0 1.2rem;color:#4f5668;font-size:.85rem}\
@media (max-width:40rem){dl{grid-template-columns:1fr}header{flex-direction:column;align-items:flex-start}}";

/// Who is signed in, for the header.
pub struct Viewer<'a> {
    pub email: Option<&'a str>,
    pub sign_in: bool,
}

/// A whole page around `body`.
pub fn page(title: &str, viewer: &Viewer<'_>, body: &str) -> String {
    let account = match (viewer.email, viewer.sign_in) {
        (Some(e), _) => format!("<li><a href=\"/me\">Signed in as {}</a></li>", esc(e)),
        (None, true) => "<li><a href=\"/login\">Sign in</a></li>".to_string(),
        (None, false) => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{t} · sigstack log explorer</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
<body><a class=\"skip\" href=\"#content\">Skip to content</a>\
<header><a href=\"/\">sigstack log explorer</a><nav aria-label=\"Main\"><ul>\
<li><a href=\"/\">Search</a></li><li><a href=\"/logs\">Logs</a></li><li><a href=\"/tuf\">Trust (TUF)</a></li>\
<li><a href=\"/alerts\">Alerts</a></li>{account}</ul></nav></header>\
<main id=\"content\"><h1>{t}</h1>{body}</main>\
<footer>Every page is plain HTML with a stable address; nothing here runs scripts.</footer></body></html>",
        t = esc(title)
    )
}

/// The search form (on the home page and above results).
pub fn search_form(q: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"/search\" role=\"search\">\
<div><label for=\"q\">E-mail or identity, artifact digest, key or certificate fingerprint, entry UUID, or log index</label>\
<input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" autocomplete=\"off\"></div><button type=\"submit\">Search</button></form>\
<form class=\"search\" method=\"post\" action=\"/search/file\" enctype=\"multipart/form-data\">\
<div><label for=\"file\">Or find the entries of a file (its SHA-256 is computed here, up to 64 MiB)</label>\
<input type=\"file\" id=\"file\" name=\"file\"></div><button type=\"submit\" class=\"secondary\">Find by file</button></form>",
        esc(q)
    )
}

/// A table with a caption and header row; cells are HTML already escaped.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "<div class=\"scroll\" role=\"region\" aria-label=\"{c}\" tabindex=\"0\"><table><caption class=\"muted\">{c}</caption><thead><tr>",
        c = esc(caption)
    );
    for h in head {
        out.push_str(&format!("<th scope=\"col\">{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{c}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A definition list of (term, HTML) pairs.
pub fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<dl>");
    for (k, v) in items {
        out.push_str(&format!("<dt>{}</dt><dd>{v}</dd>", esc(k)));
    }
    out.push_str("</dl>");
    out
}

/// `s` percent-encoded for a query string value.
pub fn query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn when(t: Option<i64>) -> String {
    t.map_or_else(|| "—".into(), |t| esc(&sigstack_types::time::rfc3339(t)))
}

/// The security headers every page carries.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
