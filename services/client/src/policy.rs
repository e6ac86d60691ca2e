//! Attestation policies as cosign evaluates them (`verify-attestation --policy`): the
//! policy sees the verified in-toto statement as its input.
//!
//! - **Rego** (`.rego`): the query `data.signature.allow` must give exactly `true`; Rego
//!   v0 syntax (`allow { … }`), as cosign evaluates it, and v1 (`import rego.v1`).
//!   Evaluated in-process (regorus). When the policy also defines `deny` or
//!   `violation` rules in package `signature`, their messages are shown with a denial.
//! - **CUE** (`.cue`): the statement must unify with the policy without conflict (cosign
//!   validates to a final value, not a concrete one). There is no CUE evaluator in Rust:
//!   the `cue` tool evaluates it (`cue eval POLICY STATEMENT.json`), found in `$PATH` or
//!   `SIGSTACK_CUE`.
//! - **JSON** (`.json`, sigstack's own): every field of the file appears in the predicate
//!   with the same value.
//!
//! One file type per policy; every policy must allow every attestation it is given.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The Rego query cosign asks.
pub const REGO_QUERY: &str = "data.signature.allow";

enum Kind {
    Rego(String),
    Cue,
    Json(Value),
}

pub struct Policy {
    path: PathBuf,
    kind: Kind,
}

/// The `cue` tool: `SIGSTACK_CUE`, else `cue` in `$PATH`.
fn cue_tool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIGSTACK_CUE") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("cue"))
        .find(|p| p.is_file())
}

impl Policy {
    /// Reads a policy file, by its extension; a Rego policy must compile.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let read = || {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the policy {}", path.display()))
        };
        let kind = match ext {
            "rego" => {
                let src = read()?;
                engine(path, &src)?;
                Kind::Rego(src)
            }
            "cue" => {
                read()?;
                if cue_tool().is_none() {
                    bail!(
                        "{} is a CUE policy, evaluated by the `cue` tool, which is not installed: `go install cuelang.org/go/cmd/cue@v0.17.1`, or name it in SIGSTACK_CUE",
                        path.display()
                    );
                }
                Kind::Cue
            }
            "json" => Kind::Json(
                serde_json::from_str(&read()?)
                    .with_context(|| format!("the policy {} is not JSON", path.display()))?,
            ),
            _ => bail!(
                "the policy {} is not a .rego, .cue or .json file",
                path.display()
            ),
        };
        Ok(Self {
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Ok when the policy allows `statement`; else why not, naming the rule or field.
    pub fn check(&self, statement: &Value) -> Result<(), String> {
        let name = self.path.display();
        match &self.kind {
            Kind::Rego(src) => rego(&self.path, src, statement).map_err(|e| format!("{name}: {e}")),
            Kind::Cue => {
                cue(CueSource::File(&self.path), statement).map_err(|e| format!("{name}: {e}"))
            }
            Kind::Json(want) => {
                if contains(&statement["predicate"], want) {
                    Ok(())
                } else {
                    Err(format!(
                        "{name}: the predicate does not hold every field of the policy with its value"
                    ))
                }
            }
        }
    }
}

/// Loads every policy named.
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Policy>> {
    paths.iter().map(|p| Policy::load(p)).collect()
}

/// Every denial of `statement` by `policies` (empty: all allow it).
pub fn denials(policies: &[Policy], statement: &Value) -> Vec<String> {
    policies
        .iter()
        .filter_map(|p| p.check(statement).err())
        .collect()
}

/// A predicate contains every field of `want` with the same value (recursively).
pub fn contains(predicate: &Value, want: &Value) -> bool {
    match (predicate, want) {
        (Value::Object(p), Value::Object(want)) => want
            .iter()
            .all(|(k, v)| p.get(k).is_some_and(|pv| contains(pv, v))),
        (a, b) => a == b,
    }
}

fn engine(path: &Path, src: &str) -> anyhow::Result<regorus::Engine> {
    let mut e = regorus::Engine::new();
    e.set_rego_v0(true);
    e.add_policy(path.display().to_string(), src.to_string())
        .map_err(|err| {
            anyhow::anyhow!("the Rego policy {} does not compile: {err}", path.display())
        })?;
    Ok(e)
}

fn rego(path: &Path, src: &str, statement: &Value) -> Result<(), String> {
    let mut e = engine(path, src).map_err(|e| e.to_string())?;
    let input = regorus::Value::from_json_str(&statement.to_string()).map_err(|e| e.to_string())?;
    e.set_input(input);
    let results = e
        .eval_query(REGO_QUERY.to_string(), false)
        .map_err(|err| format!("evaluating {REGO_QUERY}: {err}"))?;
    // exactly one result, one expression, the value true, and no bindings
    let values: Vec<&regorus::Value> = results
        .result
        .iter()
        .flat_map(|r| r.expressions.iter().map(|x| &x.value))
        .collect();
    if values.len() == 1 && *values[0] == regorus::Value::Bool(true) {
        return Ok(());
    }
    let verdict = match values.first() {
        None => format!("{REGO_QUERY} is undefined (no rule `allow` in package `signature` holds)"),
        Some(v) => format!(
            "{REGO_QUERY} is {}, not true",
            v.to_json_str().unwrap_or_default().trim()
        ),
    };
    // the policy's own reasons, where it gives them
    let mut reasons = Vec::new();
    for rule in ["deny", "violation"] {
        let q = format!("data.signature.{rule}");
        if let Ok(r) = e.eval_query(q, false) {
            for x in r.result.iter().flat_map(|r| &r.expressions) {
                if let Ok(set) = x.value.as_set() {
                    reasons.extend(set.iter().map(|m| match m.as_string() {
                        Ok(s) => s.to_string(),
                        Err(_) => m.to_json_str().unwrap_or_default(),
                    }));
                }
            }
        }
    }
    if reasons.is_empty() {
        Err(verdict)
    } else {
        Err(format!("{verdict}: {}", reasons.join("; ")))
    }
}

/// The query policy-controller asks of a Rego policy in a ClusterImagePolicy.
pub const ADMISSION_REGO_QUERY: &str = "data.sigstore.isCompliant";

/// A policy written into a ClusterImagePolicy (`policy: {type, data}`), evaluated as
/// policy-controller does: Rego in package `sigstore` whose `isCompliant` is `true`, or a
/// set of `{result, warning, error}` objects one of which has `result: true`; CUE that
/// the JSON unifies with.
pub struct Embedded {
    name: String,
    kind: EmbeddedKind,
}

enum EmbeddedKind {
    Rego(String),
    Cue(String),
}

/// An embedded policy's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed, with the policy's warning.
    Warn(String),
    Deny(String),
}

impl Embedded {
    /// `kind` is `rego` or `cue`; a Rego policy must compile, a CUE one needs the tool.
    pub fn new(name: &str, kind: &str, data: &str) -> anyhow::Result<Self> {
        let kind = match kind {
            "rego" => {
                engine(Path::new(name), data)?;
                EmbeddedKind::Rego(data.to_string())
            }
            "cue" => {
                if cue_tool().is_none() {
                    bail!(
                        "{name}: a CUE policy, evaluated by the `cue` tool, which is not installed: `go install cuelang.org/go/cmd/cue@v0.17.1`, or name it in SIGSTACK_CUE"
                    );
                }
                EmbeddedKind::Cue(data.to_string())
            }
            other => bail!("{name}: policy type {other:?} is not rego or cue"),
        };
        Ok(Self {
            name: name.to_string(),
            kind,
        })
    }

    pub fn check(&self, input: &Value) -> Verdict {
        match &self.kind {
            EmbeddedKind::Rego(src) => is_compliant(&self.name, src, input),
            EmbeddedKind::Cue(src) => match cue(CueSource::Text(src), input) {
                Ok(()) => Verdict::Allow,
                Err(e) => Verdict::Deny(format!("the {} policy (cue): {e}", self.name)),
            },
        }
    }
}

fn is_compliant(name: &str, src: &str, input: &Value) -> Verdict {
    let deny = |why: String| Verdict::Deny(format!("the {name} policy (rego): {why}"));
    let mut e = match engine(Path::new(name), src) {
        Ok(e) => e,
        Err(err) => return deny(err.to_string()),
    };
    match regorus::Value::from_json_str(&input.to_string()) {
        Ok(v) => e.set_input(v),
        Err(err) => return deny(err.to_string()),
    }
    let results = match e.eval_query(ADMISSION_REGO_QUERY.to_string(), false) {
        Ok(r) => r,
        Err(err) => return deny(format!("evaluating {ADMISSION_REGO_QUERY}: {err}")),
    };
    let Some(value) = results
        .result
        .iter()
        .flat_map(|r| r.expressions.iter().map(|x| x.value.clone()))
        .next()
    else {
        return deny(format!(
            "{ADMISSION_REGO_QUERY} is undefined (no rule `isCompliant` in package `sigstore` holds)"
        ));
    };
    if value == regorus::Value::Bool(true) {
        return Verdict::Allow;
    }
    // a set (or array) of {result, warning, error}
    let json: Value = value
        .to_json_str()
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let Some(items) = json.as_array() else {
        return deny(format!("{ADMISSION_REGO_QUERY} is {json}, not true"));
    };
    let mut errors = Vec::new();
    for it in items {
        let warning = it["warning"].as_str().unwrap_or_default();
        if it["result"] == true {
            return if warning.is_empty() {
                Verdict::Allow
            } else {
                Verdict::Warn(format!("the {name} policy: {warning}"))
            };
        }
        for k in ["error", "warning"] {
            if let Some(m) = it[k].as_str().filter(|m| !m.is_empty()) {
                errors.push(m.to_string());
            }
        }
    }
    deny(if errors.is_empty() {
        "not compliant".into()
    } else {
        errors.join("; ")
    })
}

/// A CUE policy: a file, or text written into one beside the input.
enum CueSource<'a> {
    File(&'a Path),
    Text(&'a str),
}

fn cue(source: CueSource<'_>, statement: &Value) -> Result<(), String> {
    let tool = cue_tool().ok_or("the `cue` tool is not installed")?;
    let dir = std::env::temp_dir().join(format!(
        "sigstack-cue-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    // a new directory of our own (not one planted at that name), readable by us alone
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let data = dir.join("statement.json");
    let result = (|| {
        let policy = match source {
            // an absolute path: a policy file named like a flag is still a file to `cue`
            CueSource::File(path) => std::path::absolute(path).map_err(|e| e.to_string())?,
            CueSource::Text(text) => {
                let p = dir.join("policy.cue");
                std::fs::write(&p, text).map_err(|e| e.to_string())?;
                p
            }
        };
        std::fs::write(&data, statement.to_string()).map_err(|e| e.to_string())?;
        run_bounded(&tool, &policy, &data)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let out = result?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.replace(&*data.display().to_string(), "statement");
    Err(format!(
        "the statement does not satisfy it: {}",
        text.trim()
    ))
}

/// `cue eval POLICY DATA`, killed after [`CUE_TIMEOUT`].
fn run_bounded(tool: &Path, policy: &Path, data: &Path) -> Result<std::process::Output, String> {
    let dir = data.parent().unwrap_or(Path::new("."));
    let (out, err) = (dir.join("out"), dir.join("err"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
    let mut child = std::process::Command::new(tool)
        .arg("eval")
        .arg(policy)
        .arg(data)
        .stdin(std::process::Stdio::null())
        .stdout(file(&out)?)
        .stderr(file(&err)?)
        .spawn()
        .map_err(|e| format!("running {}: {e}", tool.display()))?;
    let deadline = std::time::Instant::now() + CUE_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`cue` did not finish within {} s",
                CUE_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Ok(std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    })
}

/// How long a CUE policy may take.
const CUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sigstack-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("w");
        p
    }

    #[test]
    fn rego_v0_and_v1_policies_decide_as_cosign_asks() {
        let st = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "predicate": {"builder": {"id": "https://ci.example"}}
        });
        let v0 = write(
            "v0.rego",
            "package signature\ndefault allow = false\nallow {\n  input.predicate.builder.id == \"https://ci.example\"\n}\n",
        );
        assert!(Policy::load(&v0).expect("load").check(&st).is_ok());
        let v1 = write(
            "v1.rego",
            "package signature\nimport rego.v1\ndeny contains \"the builder is not ours\" if input.predicate.builder.id != \"https://other\"\nallow if count(deny) == 0\n",
        );
        let e = Policy::load(&v1)
            .expect("load")
            .check(&st)
            .expect_err("denied");
        assert!(e.contains("the builder is not ours"), "{e}");
        let undefined = write(
            "u.rego",
            "package signature\nallow {\n  input.nothing == 1\n}\n",
        );
        let e = Policy::load(&undefined)
            .expect("load")
            .check(&st)
            .expect_err("undefined");
        assert!(e.contains("undefined"), "{e}");
        let other_package = write("p.rego", "package other\nallow = true\n");
        assert!(
            Policy::load(&other_package)
                .expect("load")
                .check(&st)
                .is_err()
        );
        let broken = write("b.rego", "package signature\nallow {\n");
        // policy-controller's form, inside a ClusterImagePolicy
        let pc = |src: &str| {
            Embedded::new("p", "rego", src)
                .expect("compiles")
                .check(&st)
        };
        assert_eq!(
            pc(
                "package sigstore\nisCompliant { input.predicate.builder.id == \"https://ci.example\" }"
            ),
            Verdict::Allow
        );
        assert!(matches!(
            pc("package sigstore\nisCompliant[r] { r := {\"result\": false, \"error\": \"not our builder\"} }"),
            Verdict::Deny(e) if e.contains("not our builder")
        ));
        assert!(matches!(
            pc("package sigstore\nisCompliant[r] { r := {\"result\": true, \"warning\": \"old builder\"} }"),
            Verdict::Warn(w) if w.contains("old builder")
        ));
        assert!(
            matches!(pc("package signature\nallow = true"), Verdict::Deny(e) if e.contains("undefined"))
        );
        assert!(Embedded::new("p", "opa", "").is_err());
        assert!(Policy::load(&broken).is_err());
        assert!(Policy::load(&write("x.yaml", "a: 1")).is_err());
    }
}
