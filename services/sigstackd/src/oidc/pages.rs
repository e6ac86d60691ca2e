//! Server-rendered pages: the login form (authorization and device approval) and the
//! out-of-band code page. Plain HTML and inline CSS, no scripts and no external assets.

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f5f7;\
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;color:#1d2330}\
main{background:#fff;padding:2.2rem 2.4rem;border-radius:12px;box-shadow:0 2px 16px rgba(0,0,0,.08);\
width:22rem}h1{font-size:1.35rem;margin:0 0 .3rem}p.sub{color:#5b6475;margin:0 0 1.4rem;font-size:.92rem}\
label{display:block;font-size:.85rem;margin:.9rem 0 .3rem;color:#39404d}input[type=text],input[type=password]\
{width:100%;box-sizing:border-box;padding:.6rem .7rem;border:1px solid #c9ced8;border-radius:7px;font-size:1rem}\
button{margin-top:1.4rem;width:100%;padding:.7rem;border:0;border-radius:7px;background:#3b5bdb;color:#fff;\
font-size:1rem;cursor:pointer}button.secondary{background:#e9ecf2;color:#1d2330;margin-top:.6rem}\
.err{background:#fdecec;color:#a61b1b;padding:.6rem .8rem;border-radius:7px;font-size:.9rem}\
code.big{display:block;font-size:1.4rem;letter-spacing:.08em;text-align:center;padding:.8rem;\
background:#f0f2f6;border-radius:7px;word-break:break-all}\
a.upstream{display:block;text-align:center;padding:.65rem;border:1px solid #c9ced8;border-radius:7px;\
color:#1d2330;text-decoration:none;margin:.4rem 0}a.upstream:hover{background:#f0f2f6}\
p.or{text-align:center;color:#8a92a3;font-size:.8rem;margin:1rem 0 0}footer{margin-top:1.2rem;color:#8a92a3;font-size:.75rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t}</title>\
<style>{STYLE}</style></head><body><main>{body}<footer>sigstack identity provider</footer></main></body></html>",
        t = esc(title)
    )
}

fn hidden_fields(hidden: &[(&str, String)]) -> String {
    hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect()
}

/// The login form. `hidden` are the request's parameters, carried through the POST;
/// `connectors` are (link, name) of the upstream identity providers offered.
pub fn login(
    action: &str,
    subtitle: &str,
    hidden: &[(&str, String)],
    error: Option<&str>,
    deny: bool,
    connectors: &[(String, String)],
) -> String {
    let fields = hidden_fields(hidden);
    let upstream: String = if connectors.is_empty() {
        String::new()
    } else {
        let links: String = connectors
            .iter()
            .map(|(href, name)| {
                format!(
                    "<a class=\"upstream\" href=\"{}\">Continue with {}</a>",
                    esc(href),
                    esc(name)
                )
            })
            .collect();
        format!("{links}<p class=\"or\">or with a local account</p>")
    };
    let err = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let deny = if deny {
        "<button class=\"secondary\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button>"
    } else {
        ""
    };
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p class=\"sub\">{sub}</p>{err}{upstream}\
<form method=\"post\" action=\"{action}\">{fields}\
<label for=\"username\">Username</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" autofocus required>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\" name=\"action\" value=\"approve\">Sign in</button>{deny}</form>",
            sub = esc(subtitle),
            action = esc(action),
        ),
    )
}

/// The consent page: may `client` have `who`'s identity?
pub fn consent(action: &str, client: &str, who: &str, hidden: &[(&str, String)]) -> String {
    page(
        "Allow access",
        &format!(
            "<h1>Allow access?</h1><p class=\"sub\">Signed in as <b>{who}</b>.</p>\
<p><b>{client}</b> will receive your identity (name and e-mail address) to put it in a \
signing certificate; the certificate is recorded in a public transparency log.</p>\
<form method=\"post\" action=\"{action}\">{fields}\
<button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
<button class=\"secondary\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
            who = esc(who),
            client = esc(client),
            action = esc(action),
            fields = hidden_fields(hidden),
        ),
    )
}

/// A page that only says something (errors, the out-of-band code, device approval).
pub fn message(title: &str, text: &str, code: Option<&str>) -> String {
    let code = code
        .map(|c| format!("<code class=\"big\" id=\"code\">{}</code>", esc(c)))
        .unwrap_or_default();
    page(
        title,
        &format!(
            "<h1>{}</h1><p class=\"sub\">{}</p>{code}",
            esc(title),
            esc(text)
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let p = super::login(
            "/auth",
            "to <b>",
            &[("state", "\"><script>".into())],
            Some("<bad>"),
            false,
            &[("/auth/connector/x?a=1&b=\"".into(), "<Corp>".into())],
        );
        assert!(!p.contains("<script>") && !p.contains("<b>") && !p.contains("<bad>"));
        assert!(p.contains("Continue with &lt;Corp&gt;") && p.contains("a=1&amp;b=&quot;"));
        let c = super::consent("/auth/consent", "<app>", "<who>", &[]);
        assert!(!c.contains("<app>") && !c.contains("<who>"));
    }
}
