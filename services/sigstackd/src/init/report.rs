//! What `init` tells the operator at the end: what it did, how to start each service,
//! check the stack and trust it, and where the offline material is.

use super::{InitArgs, Layout, Urls};
use std::path::Path;

pub(super) fn print(
    a: &InitArgs,
    u: &Urls,
    l: &Layout,
    checked: bool,
    notes: &[String],
    tuf_root: &Path,
) {
    let dir = &l.dir;
    let password_file = l.admin_password();
    let username = super::username(a).unwrap_or("admin");
    let d = dir.display();
    println!(
        "sigstack stack {} in {d}",
        if checked { "checked" } else { "prepared" }
    );
    for n in notes {
        println!("  note:   {n}");
    }
    for s in ["log", "log-v2", "ctlog", "ca", "oidc", "tuf", "tsa"] {
        println!("  start:  sigstackd {s} --config {d}/{s}.toml");
    }
    println!(
        "  check:  sigstackd doctor --tuf-url {} --root {}",
        u.tuf,
        tuf_root.display()
    );
    println!(
        "  trust:  sigstack initialize --mirror {} --root {}",
        u.tuf,
        tuf_root.display()
    );
    println!(
        "  login:  user {} ({}), password in {}{}",
        username,
        a.admin_email,
        password_file.display(),
        if password_file.exists() {
            ""
        } else {
            " (with the offline directory, away)"
        }
    );
    if l.offline.exists() {
        println!(
            "  offline: {} holds the CA and TSA root keys and the TUF ceremony: no service needs it; keep it offline (see the README).",
            l.offline.display()
        );
    }
    if l.is_older() {
        println!(
            "  offline: in this stack's layout (prepared by an older init) the offline material is {d}/keys/ca-root.pem, {d}/keys/tsa-root.pem and {d}/tuf-ceremony/keys: keep them offline."
        );
    }
}
