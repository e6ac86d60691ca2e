//! `sigstack`: the client, with cosign's subcommands, flags, environment variables and
//! file formats for blobs, rekor-cli's log commands, and the sigstore-conformance CLI
//! protocol (`sign-bundle`, `verify-bundle`).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: starting: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.is::<cli::VerificationFailed>() {
                cli::EXIT_VERIFY
            } else if e.is::<cli::UsageError>() {
                cli::EXIT_USAGE
            } else {
                cli::EXIT_ERROR
            };
            eprintln!("Error: {e:#}");
            ExitCode::from(code)
        }
    }
}
