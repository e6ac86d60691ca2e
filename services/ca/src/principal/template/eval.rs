//! Rendering a parsed template over the token claims and the provider's default values, with
//! the value semantics of Go `text/template` over Fulcio's `map[string]string` data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Expr, Func, Node, TemplateError, err};
/// Template data: the token claims over the provider's default values.
pub(crate) struct Data<'a> {
    pub claims: &'a Map<String, Value>,
    pub defaults: &'a BTreeMap<String, String>,
}

impl Data<'_> {
    /// A top-level value as Fulcio's `map[string]string` holds it.
    pub(super) fn top(&self, key: &str) -> Option<String> {
        match self.claims.get(key) {
            Some(v) => Some(go_top(v)),
            None => self.defaults.get(key).cloned(),
        }
    }

    /// `None` when a key on the path is missing.
    fn lookup(&self, path: &[String]) -> Result<Option<String>, TemplateError> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(None);
        };
        if rest.is_empty() {
            return Ok(self.top(first));
        }
        let Some(mut v) = self.claims.get(first) else {
            return match self.defaults.contains_key(first) {
                true => err(format!("{first} is not an object")),
                false => Ok(None),
            };
        };
        for (n, seg) in rest.iter().enumerate() {
            match v {
                Value::Object(m) => match m.get(seg) {
                    Some(x) => v = x,
                    None => return Ok(None),
                },
                _ => return err(format!("{} is not an object", path[..=n].join("."))),
            }
        }
        Ok(Some(go_v(v)))
    }

    fn render_root(&self) -> String {
        let keys: BTreeSet<&String> = self.claims.keys().chain(self.defaults.keys()).collect();
        let parts: Vec<String> = keys
            .into_iter()
            .map(|k| format!("{k}:{}", self.top(k).unwrap_or_default()))
            .collect();
        format!("map[{}]", parts.join(" "))
    }
}

enum Val {
    Str(String),
    Bool(bool),
    Root,
}

pub(super) fn exec(nodes: &[Node], data: &Data<'_>, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Output(e) => match eval(e, data)? {
                Val::Str(s) => out.push_str(&s),
                Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                Val::Root => out.push_str(&data.render_root()),
            },
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let v = eval(cond, data)?;
                exec(if truth(&v, data) { then } else { otherwise }, data, out)?;
            }
        }
    }
    Ok(())
}

fn truth(v: &Val, data: &Data<'_>) -> bool {
    match v {
        Val::Str(s) => !s.is_empty(),
        Val::Bool(b) => *b,
        Val::Root => !data.claims.is_empty() || !data.defaults.is_empty(),
    }
}

fn equal(a: &Val, b: &Val) -> Result<bool, TemplateError> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        _ => err("incompatible types for comparison"),
    }
}

fn eval(e: &Expr, data: &Data<'_>) -> Result<Val, TemplateError> {
    Ok(match e {
        Expr::Dot => Val::Root,
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Field(path) => match data.lookup(path)? {
            Some(v) => Val::Str(v),
            None => {
                return err(format!(
                    "claim {} is missing and has no default value",
                    path.join(".")
                ));
            }
        },
        Expr::Call(f, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, data)?);
            }
            call(*f, vals, data)?
        }
    })
}

fn call(f: Func, mut vals: Vec<Val>, data: &Data<'_>) -> Result<Val, TemplateError> {
    match f {
        Func::Eq => {
            let (first, rest) = vals
                .split_first()
                .map_or((None, &[][..]), |(a, r)| (Some(a), r));
            let Some(first) = first else {
                return err("eq needs arguments");
            };
            for v in rest {
                if equal(first, v)? {
                    return Ok(Val::Bool(true));
                }
            }
            Ok(Val::Bool(false))
        }
        Func::Ne => match vals.as_slice() {
            [a, b] => Ok(Val::Bool(!equal(a, b)?)),
            _ => err("ne needs two arguments"),
        },
        Func::Not => match vals.as_slice() {
            [a] => Ok(Val::Bool(!truth(a, data))),
            _ => err("not needs one argument"),
        },
        Func::And | Func::Or => {
            let want = matches!(f, Func::Or);
            let last = vals.len().saturating_sub(1);
            match vals.iter().position(|v| truth(v, data) == want) {
                Some(i) => Ok(vals.swap_remove(i)),
                None if vals.is_empty() => err("and/or need arguments"),
                None => Ok(vals.swap_remove(last)),
            }
        }
        Func::Index => {
            let mut iter = vals.into_iter();
            if !matches!(iter.next(), Some(Val::Root)) {
                return err("index can only look into the claims (.)");
            }
            let mut keys = Vec::new();
            for k in iter {
                match k {
                    Val::Str(s) => keys.push(s),
                    _ => return err("index keys must be strings"),
                }
            }
            if keys.is_empty() {
                return Ok(Val::Root);
            }
            Ok(Val::Str(data.lookup(&keys)?.unwrap_or_default()))
        }
    }
}

/// A top-level claim as Fulcio's `mapValuesToString` renders it.
fn go_top(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f}")),
        other => go_v(other),
    }
}

/// Go's `fmt.Sprintf("%v", v)` for a value decoded from JSON.
pub(crate) fn go_v(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".to_owned(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), go_float_v),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_v(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e21.
fn go_float_v(f: f64) -> String {
    let sci = format!("{f:e}");
    let exp: i32 = sci
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if f == 0.0 || (-4..21).contains(&exp) {
        return format!("{f}");
    }
    let mantissa = sci.rsplit_once('e').map_or(sci.as_str(), |(m, _)| m);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::super::Template;
    use super::*;
    use serde_json::json;

    fn render(
        src: &str,
        claims: Value,
        defaults: &[(&str, &str)],
    ) -> Result<String, TemplateError> {
        let claims = match claims {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let defaults = defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let data = Data {
            claims: &claims,
            defaults: &defaults,
        };
        Template::parse(src)?.render(&data)
    }

    #[test]
    fn fields_defaults_and_bare_names() {
        let c =
            json!({"repository": "o/r", "run_id": 42, "url": "https://ghe.example", "ok": true});
        let d = [("url", "https://github.com"), ("environment", "")];
        assert_eq!(
            render("{{ .url }}/{{.repository}}", c.clone(), &d).as_deref(),
            Ok("https://ghe.example/o/r")
        );
        assert_eq!(
            render("{{ .environment }}", c.clone(), &d).as_deref(),
            Ok("")
        );
        assert_eq!(render("run_id", c.clone(), &d).as_deref(), Ok("42"));
        assert_eq!(render("ok", c.clone(), &d).as_deref(), Ok("true"));
        assert_eq!(render("environment", c.clone(), &d).as_deref(), Ok(""));
        assert!(render("   ", c.clone(), &d).is_ok_and(|s| s.is_empty()));
        assert_eq!(
            render("job_id", c.clone(), &d),
            Err(TemplateError(
                "claim job_id is missing and has no default value".into()
            ))
        );
        assert_eq!(
            render("{{ .job_id }}", c, &d),
            Err(TemplateError(
                "claim job_id is missing and has no default value".into()
            ))
        );
    }

    #[test]
    fn go_value_formatting() {
        let c = json!({"f": 1.5, "big": 1e21, "i": 12345678901234567890u64, "n": null,
                       "a": ["x", 2, 3e-7], "o": {"b": 1, "a": {"z": false}}});
        assert_eq!(render("f", c.clone(), &[]).as_deref(), Ok("1.5"));
        assert_eq!(
            render("big", c.clone(), &[]).as_deref(),
            Ok("1000000000000000000000")
        );
        assert_eq!(
            render("i", c.clone(), &[]).as_deref(),
            Ok("12345678901234567000")
        );
        assert_eq!(render("n", c.clone(), &[]).as_deref(), Ok("<nil>"));
        assert_eq!(render("a", c.clone(), &[]).as_deref(), Ok("[x 2 3e-07]"));
        assert_eq!(
            render("o", c.clone(), &[]).as_deref(),
            Ok("map[a:map[z:false] b:1]")
        );
        assert_eq!(
            render("{{ .o.a.z }}", c.clone(), &[]).as_deref(),
            Ok("false")
        );
        assert_eq!(
            render("{{ index . \"o\" \"b\" }}", c.clone(), &[]).as_deref(),
            Ok("1")
        );
        assert_eq!(
            render("{{ .f.x }}", c, &[]),
            Err(TemplateError("f is not an object".into()))
        );
        assert_eq!(go_float_v(1e21), "1e+21");
        assert_eq!(go_float_v(0.0001), "0.0001");
    }

    #[test]
    fn upstream_gitlab_and_circleci_templates() {
        let gitlab = r#"refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}"#;
        assert_eq!(
            render(gitlab, json!({"ref_type": "branch", "ref": "main"}), &[]).as_deref(),
            Ok("refs/heads/main")
        );
        assert_eq!(
            render(gitlab, json!({"ref_type": "tag", "ref": "v1"}), &[]).as_deref(),
            Ok("refs/tags/v1")
        );
        let claims =
            json!({"oidc.circleci.com/project-id": "p1", "oidc.circleci.com/ssh-rerun": true});
        let d = [("api_url", "https://circleci.com/api/v2")];
        assert_eq!(
            render(
                r#"{{.api_url}}/projects/{{(index . "oidc.circleci.com/project-id")}}/x"#,
                claims.clone(),
                &d
            )
            .as_deref(),
            Ok("https://circleci.com/api/v2/projects/p1/x")
        );
        let rerun = r#"{{if eq (index . "oidc.circleci.com/ssh-rerun") "true"}}ssh-rerun{{ else }}""{{end}}"#;
        assert_eq!(render(rerun, claims, &d).as_deref(), Ok("ssh-rerun"));
        assert_eq!(render(rerun, json!({}), &d).as_deref(), Ok("\"\""));
        assert_eq!(
            render(r#"{{index . "oidc.circleci.com/vcs-ref"}}"#, json!({}), &d).as_deref(),
            Ok("")
        );
    }

    #[test]
    fn control_flow_trim_and_comments() {
        let c = json!({"a": "1", "b": ""});
        let t = "{{if .b}}B{{else if ne .a \"1\"}}X{{else if and .a (not .b)}}Y{{else}}Z{{end}}";
        assert_eq!(render(t, c.clone(), &[]).as_deref(), Ok("Y"));
        assert_eq!(
            render("a  {{- .a -}}  b{{/* note */}}!", c.clone(), &[]).as_deref(),
            Ok("a1b!")
        );
        assert_eq!(
            render(
                "{{ or .b \"dflt\" }}|{{ eq .a \"1\" \"2\" }}",
                c.clone(),
                &[]
            )
            .as_deref(),
            Ok("dflt|true")
        );
        assert_eq!(
            render("{{ \"}}\\x41\" }}{{ `raw` }}", c.clone(), &[]).as_deref(),
            Ok("}}Araw")
        );
        assert_eq!(
            render("{{ . }}", c, &[("z", "9")]).as_deref(),
            Ok("map[a:1 b: z:9]")
        );
    }
    #[test]
    fn comparing_a_bool_with_a_string_fails() {
        assert_eq!(
            render("{{ eq .a true }}", json!({"a": "x"}), &[]),
            Err(TemplateError("incompatible types for comparison".into()))
        );
    }
}
