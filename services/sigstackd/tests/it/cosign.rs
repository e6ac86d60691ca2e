//! The real cosign (v2 and v3) and rekor-cli, built from the Go module proxy at pinned
//! versions by `scripts/go-tools` (run by `scripts/test`, which names them in
//! `SIGSTACK_COSIGN_V2`, `SIGSTACK_COSIGN_V3`, `SIGSTACK_REKOR_CLI`, `SIGSTACK_CRANE`), each
//! run with a home and TUF cache of its own.

use crate::client::Out;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A pinned Go tool named by `var`.
pub fn go_tool(var: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_default();
    assert!(
        p.is_file(),
        "{var} does not name the tool: run ./scripts/test, or eval \"$(scripts/go-tools)\" first"
    );
    p
}

/// Whether a bundle carries an RFC 3161 timestamp.
pub fn stamped(bundle: &Path) -> bool {
    std::fs::read(bundle)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|b| {
            b.pointer("/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0")
                .is_some()
        })
}

/// A cosign binary with a home of its own (`$HOME`, and `$TUF_ROOT` beneath it unless
/// the caller shares one).
pub struct Cosign {
    bin: PathBuf,
    pub name: &'static str,
    pub home: PathBuf,
    pub tuf_root: PathBuf,
    wrap: Option<crate::client::Wrap>,
}

impl Cosign {
    pub fn v2(home: &Path) -> Self {
        Self::new(go_tool("SIGSTACK_COSIGN_V2"), "cosign v2", home)
    }

    pub fn v3(home: &Path) -> Self {
        Self::new(go_tool("SIGSTACK_COSIGN_V3"), "cosign v3", home)
    }

    fn new(bin: PathBuf, name: &'static str, home: &Path) -> Self {
        std::fs::create_dir_all(home).expect("home");
        Self {
            bin,
            name,
            home: home.to_path_buf(),
            tuf_root: home.join(".sigstore/root"),
            wrap: None,
        }
    }

    /// The same cosign on another TUF cache.
    pub fn with_tuf_root(mut self, tuf_root: &Path) -> Self {
        self.tuf_root = tuf_root.to_path_buf();
        self
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        clean_env(&mut c);
        c.env("HOME", &self.home)
            .env("TUF_ROOT", &self.tuf_root)
            .stdin(Stdio::null());
        match &self.wrap {
            Some(w) => {
                let mut c = w(c);
                c.stdin(Stdio::null());
                c
            }
            None => c,
        }
    }

    /// The same cosign with every command rewritten by `wrap`.
    pub fn wrapped(mut self, wrap: impl Fn(Command) -> Command + Send + Sync + 'static) -> Self {
        self.wrap = Some(std::sync::Arc::new(wrap));
        self
    }

    /// Runs cosign. cosign v2 takes a bundle's signing time from its RFC 3161 timestamps
    /// (all a Rekor v2 bundle has) only with `--use-signed-timestamps`, which its users
    /// pass for such bundles: so does this, for `verify-blob*` of a timestamped bundle.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut args = args.to_vec();
        let bundle = args
            .iter()
            .position(|a| *a == "--bundle")
            .and_then(|i| args.get(i + 1));
        if self.name == "cosign v2"
            && matches!(
                args.first(),
                Some(&"verify-blob" | &"verify-blob-attestation")
            )
            && bundle.is_some_and(|b| stamped(Path::new(b)))
            && !args.contains(&"--use-signed-timestamps")
        {
            args.insert(1, "--use-signed-timestamps");
        }
        let mut c = self.cmd();
        c.args(&args);
        out(c)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        out(c)
    }
}

/// No cosign or Sigstore setting of the machine leaks into a test's run.
pub fn clean_env(c: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("COSIGN_")
            || k.starts_with("SIGSTORE_")
            || k.starts_with("TUF_")
            || k.starts_with("ACTIONS_ID_TOKEN")
            || k == "BROWSER"
        {
            c.env_remove(k);
        }
    }
}

pub fn out(mut c: Command) -> Out {
    let o = c.output().expect("run a Go tool");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}
