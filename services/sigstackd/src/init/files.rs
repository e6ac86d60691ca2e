//! The configuration files `init` writes: made whole on the first run; on later runs an
//! existing file is the operator's — it is kept byte for byte except that settings it
//! lacks (new in this version) are added, and settings whose value differs from the
//! flags are reported, not changed.

use anyhow::Context;
use std::path::Path;

/// One service's configuration file.
pub struct ConfigFile {
    pub name: &'static str,
    /// The environment prefix that overrides its keys (`SIGSTACK_LOG_`).
    pub env: &'static str,
    /// Top-level settings, each value already TOML-encoded.
    pub top: Vec<(&'static str, String)>,
    /// Tables after the settings (`[[users]]` …), written only with a new file.
    pub tables: String,
}

/// What happened to a file.
pub struct Outcome {
    /// The file did not exist and was written whole.
    pub created: bool,
    /// Settings added to an existing file.
    pub added: Vec<&'static str>,
    /// Settings kept though the flags say otherwise: (key, kept, from the flags).
    pub differs: Vec<(&'static str, String, String)>,
    /// Settings set from the flags in an existing file (`reconfigure`).
    pub replaced: Vec<&'static str>,
}

/// A TOML basic string.
pub fn q(s: impl AsRef<str>) -> String {
    // JSON string escapes are valid TOML basic-string escapes
    serde_json::to_string(s.as_ref()).unwrap_or_default()
}

pub fn qp(p: &Path) -> String {
    q(p.display().to_string())
}

fn value_of(encoded: &str) -> Option<toml::Value> {
    format!("v = {encoded}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
}

impl ConfigFile {
    fn header(&self) -> String {
        format!(
            "# written by `sigstackd init`; every key may be overridden by {}<KEY>\n",
            self.env
        )
    }

    pub fn text(&self) -> String {
        let mut out = self.header();
        for (k, v) in &self.top {
            out.push_str(&format!("{k} = {v}\n"));
        }
        if !self.tables.is_empty() {
            out.push('\n');
            out.push_str(&self.tables);
        }
        out
    }

    /// Writes the file (mode 0600) if it does not exist; else keeps it, adding the
    /// settings it lacks after its leading comments (where a key is always top-level),
    /// and setting those named in `reconfigure` to the flags' values where they differ.
    /// `from_flags`: the settings the command line gives (the others, key paths above
    /// all, are the file's alone: never reported as differing); `reconfigure`: take
    /// those from the flags.
    pub fn write_or_merge(
        &self,
        dir: &Path,
        from_flags: &[&str],
        reconfigure: bool,
    ) -> anyhow::Result<Outcome> {
        let path = dir.join(self.name);
        let existing = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::bootstrap::write_secret(&path, &self.text())?;
                return Ok(Outcome {
                    created: true,
                    added: Vec::new(),
                    differs: Vec::new(),
                    replaced: Vec::new(),
                });
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let table: toml::Table = existing.parse().with_context(|| {
            format!(
                "{} is not valid TOML: fix it, or move it away to have it written anew",
                path.display()
            )
        })?;
        let mut added = Vec::new();
        let mut differs = Vec::new();
        let mut replaced = Vec::new();
        let mut lines = String::new();
        for (k, v) in &self.top {
            match table.get(*k) {
                None => {
                    added.push(*k);
                    lines.push_str(&format!("{k} = {v}\n"));
                }
                Some(_) if !from_flags.contains(k) => {}
                Some(kept) if reconfigure && value_of(v).as_ref() != Some(kept) => {
                    replaced.push(*k);
                }
                Some(kept) if value_of(v).as_ref() != Some(kept) => {
                    differs.push((
                        *k,
                        serde_json::to_string(kept).unwrap_or_default(),
                        v.clone(),
                    ));
                }
                Some(_) => {}
            }
        }
        if !added.is_empty() || !replaced.is_empty() {
            let existing = replace_top_level(&existing, &self.top, &replaced);
            let cut = leading_comments(&existing);
            let text = if added.is_empty() {
                existing
            } else {
                format!(
                    "{}# added by `sigstackd init` (new settings)\n{lines}{}",
                    &existing[..cut],
                    &existing[cut..]
                )
            };
            text.parse::<toml::Table>()
                .with_context(|| format!("adding settings to {}", path.display()))?;
            crate::bootstrap::write_secret(&path, &text)?;
        }
        Ok(Outcome {
            created: false,
            added,
            differs,
            replaced,
        })
    }
}

/// `text` with the top-level lines setting each key in `keys` (single-line values, as
/// `init` writes them) set to its value in `top`; comments and everything else kept.
fn replace_top_level(text: &str, top: &[(&'static str, String)], keys: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_table = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        in_table |= t.starts_with('[');
        let key = t.split('=').next().unwrap_or("").trim();
        match top.iter().find(|(k, _)| *k == key && keys.contains(k)) {
            Some((k, v)) if !in_table && t.contains('=') => out.push_str(&format!("{k} = {v}\n")),
            _ => out.push_str(line),
        }
    }
    out
}

/// The length of the comment and blank lines that open a file.
fn leading_comments(text: &str) -> usize {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        at += line.len();
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        ConfigFile {
            name: "x.toml",
            env: "SIGSTACK_X_",
            top: vec![("listen", q("0.0.0.0:1")), ("public_url", q("http://a"))],
            tables: "[[users]]\nusername = \"u\"\n".into(),
        }
    }

    #[test]
    fn toml_strings_escape() {
        let t: toml::Table = format!("a = {}", q("x\"y\\z\n")).parse().expect("toml");
        assert_eq!(t["a"].as_str(), Some("x\"y\\z\n"));
    }

    #[test]
    fn an_existing_file_keeps_its_settings_and_gains_missing_ones() {
        let dir = std::env::temp_dir().join(format!("init-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = file();
        assert!(
            f.write_or_merge(&dir, &["listen"], false)
                .expect("write")
                .created
        );
        let edited =
            "# mine\nlisten = \"127.0.0.1:9\"\nextra = [1, 2]\n\n[[users]]\nusername = \"v\"\n";
        std::fs::write(dir.join("x.toml"), edited).expect("w");
        let o = f.write_or_merge(&dir, &["listen"], false).expect("merge");
        assert!(!o.created);
        assert_eq!(o.added, vec!["public_url"]);
        assert_eq!(o.differs.len(), 1);
        assert_eq!(o.differs[0].0, "listen");
        let t: toml::Table = std::fs::read_to_string(dir.join("x.toml"))
            .expect("r")
            .parse()
            .expect("toml");
        assert_eq!(t["listen"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(t["public_url"].as_str(), Some("http://a"));
        assert_eq!(t["users"][0]["username"].as_str(), Some("v"));
        assert!(t.contains_key("extra"));
        // nothing to add: the file is not touched
        let before = std::fs::read(dir.join("x.toml")).expect("r");
        let o = f.write_or_merge(&dir, &["listen"], false).expect("again");
        assert!(o.added.is_empty());
        assert_eq!(std::fs::read(dir.join("x.toml")).expect("r"), before);
        // reconfigure: the named setting takes the flags' value, comments and the rest stay
        let o = f
            .write_or_merge(&dir, &["listen"], true)
            .expect("reconfigure");
        assert_eq!(o.replaced, vec!["listen"]);
        let text = std::fs::read_to_string(dir.join("x.toml")).expect("r");
        assert!(text.starts_with("# mine\n"), "{text}");
        let t: toml::Table = text.parse().expect("toml");
        assert_eq!(t["listen"].as_str(), Some("0.0.0.0:1"));
        assert!(t.contains_key("extra"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
