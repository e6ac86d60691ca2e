//! OpenAPI-driven fuzzing: schemathesis (from PyPI, in the interop venv) generates
//! requests from each service's committed OpenAPI document and sends them to a running
//! `sigstackd dev`: no answer may be a 5xx, and every answer must be one the document
//! names, with the documented content type and, for JSON, a body its schema allows.

use crate::keyless::{dev_stack, run_within, venv, workspace};
use crate::support::*;
use std::process::Command;
use std::time::Duration;

pub fn every_service_answers_as_its_openapi_document_says() {
    let dir = temp_dir("schemathesis");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let mut failed = Vec::new();
    for service in ["log", "ca", "ctlog", "oidc", "tuf", "tsa"] {
        let url = stack["services"][service]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("{service} url in {stack}"))
            .to_string();
        let (ok, out) = run_within(
            Command::new(venv().join("bin/schemathesis"))
                .env("PYTHONPATH", workspace().join("tests/interop/python"))
                .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
                .env("HOME", dir.join("home"))
                // its cache (`.schemathesis/`) goes there too, not into the source tree
                .current_dir(&dir)
                .args(["run", p(&workspace().join(format!("openapi/{service}.json")))])
                .args(["--url", &url, "--max-examples", "40", "--seed", "20261206"])
                .args([
                    "--checks",
                    "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                ])
                .args(["--workers", "1", "--no-color"]),
            Duration::from_secs(300),
        );
        let summary = out
            .lines()
            .rev()
            .find(|l| l.starts_with("===") && l.contains(" in "))
            .unwrap_or("")
            .to_string();
        println!("schemathesis {service}: {summary}");
        if !ok {
            failed.push(format!("{service}:\n{out}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}
