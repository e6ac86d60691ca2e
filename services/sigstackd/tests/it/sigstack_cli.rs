//! The `sigstack` binary as the tests run it: a home directory of its own per client,
//! outputs with their exit code, and commands that can be rewritten (a network
//! namespace, a tracer, a clock moved by libfaketime).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `sigstack` binary (built beside `sigstackd` by `cargo test --workspace`) with a
/// home directory of its own, so its TUF cache and checkpoints are this test's.
pub struct Sigstack {
    bin: PathBuf,
    pub home: PathBuf,
    wrap: Option<Wrap>,
}

/// Rewrites a client's command (run in a network namespace, under a tracer).
pub type Wrap = std::sync::Arc<dyn Fn(Command) -> Command + Send + Sync>;

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Sigstack {
    pub fn new(home: &Path) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_sigstackd")).with_file_name("sigstack");
        assert!(
            bin.exists(),
            "the sigstack binary is not at {} (cargo test --workspace builds it)",
            bin.display()
        );
        std::fs::create_dir_all(home).expect("home");
        Self {
            bin,
            home: home.to_path_buf(),
            wrap: None,
        }
    }

    /// The same client with every command rewritten by `wrap`.
    pub fn wrapped(mut self, wrap: impl Fn(Command) -> Command + Send + Sync + 'static) -> Self {
        self.wrap = Some(std::sync::Arc::new(wrap));
        self
    }

    pub fn cmd(&self) -> Command {
        self.cmd_of(Command::new(&self.bin))
    }

    /// `sigstack ARGS` with the clock moved by `offset` (libfaketime: `+3 days`), for
    /// what only time brings (expired metadata).
    pub fn run_later(&self, offset: &str, args: &[&str]) -> Out {
        let mut c = Command::new("faketime");
        c.arg(offset).arg(&self.bin);
        let mut c = self.cmd_of(c);
        c.args(args);
        Self::run_cmd(c)
    }

    fn cmd_of(&self, mut c: Command) -> Command {
        c.env("HOME", &self.home).stdin(Stdio::null());
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
        match &self.wrap {
            Some(w) => {
                let mut c = w(c);
                c.stdin(Stdio::null());
                c
            }
            None => c,
        }
    }

    fn run_cmd(mut c: Command) -> Out {
        let o = c.output().expect("run sigstack");
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        Self::run_cmd(c)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Self::run_cmd(c)
    }
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

pub fn json_of(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
