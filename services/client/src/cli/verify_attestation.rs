//! `verify-blob-attestation`: a DSSE attestation bundle verified as `verify-blob` verifies
//! a signature, then its statement checked: the predicate type and the policies.

use super::*;

#[derive(Args)]
pub(super) struct VerifyAttestationArgs {
    /// The attestation bundle.
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: PathBuf,
    /// The predicate type the statement must have (same names as attest-blob).
    #[arg(long = "type")]
    predicate_type: Option<String>,
    /// A policy the statement must satisfy: Rego (`.rego`, `data.signature.allow`), CUE
    /// (`.cue`, with the `cue` tool) or JSON (`.json`: fields the predicate must hold), as
    /// `verify-attestation --policy` takes them. Repeatable.
    #[arg(long)]
    policy: Vec<PathBuf>,
    #[command(flatten)]
    identity: Identity,
    /// Check that the statement names the artifact among its subjects (cosign's default).
    /// `--check-claims=false` verifies the envelope alone, without an artifact.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", env = "COSIGN_CHECK_CLAIMS")]
    check_claims: bool,
    /// The artifact, or `sha256:<hex>` of it (needed unless --check-claims=false).
    artifact: Option<String>,
}

pub(super) async fn verify_attestation(
    trust: &TrustArgs,
    a: &VerifyAttestationArgs,
    out: Output,
) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let artifact = match (&a.artifact, a.check_claims) {
        (Some(x), true) => artifact_of(x)?,
        (None, true) => {
            return Err(UsageError(
                "give the artifact (or sha256:<hex>) whose claims to check, or --check-claims=false to verify the envelope alone".into(),
            )
            .into());
        }
        (Some(_), false) => {
            return Err(UsageError(
                "an artifact was given with --check-claims=false: its subjects would not be checked".into(),
            )
            .into());
        }
        (None, false) => {
            eprintln!(
                "Warning: --check-claims=false: the statement's subjects are not checked against any artifact"
            );
            Artifact::Unchecked
        }
    };
    let mut m = trust_material(trust).await?;
    a.identity.apply_pki(&mut m.trusted_root)?;
    let bundle = read_bundle(&a.bundle)?;
    let policies = sigstack::policy::load_all(&a.policy)?;
    let v = verify_with(
        &bundle,
        &m.trusted_root,
        &artifact,
        &policy,
        now(),
        &a.identity.options(),
    )
    .map_err(|e| VerificationFailed(e.to_string()))?;
    // the statement is exactly what was signed (verify refuses any other DSSE payload)
    let (Some(statement), Some(got)) = (v.statement_json(), v.predicate_type.clone()) else {
        return Err(
            VerificationFailed("the bundle holds no attestation (DSSE envelope)".into()).into(),
        );
    };
    let statement = statement.map_err(|e| VerificationFailed(e.to_string()))?;
    if let Some(t) = &a.predicate_type {
        let want = predicate_type(t)?;
        if got != want {
            return Err(VerificationFailed(format!(
                "the attestation's predicate type {got:?} is not {want:?}"
            ))
            .into());
        }
    }
    let denied = sigstack::policy::denials(&policies, &statement);
    if !denied.is_empty() {
        return Err(VerificationFailed(format!(
            "{} policy violation(s):\n  {}",
            denied.len(),
            denied.join("\n  ")
        ))
        .into());
    }
    if out == Output::Text {
        println!("{}", serde_json::to_string(&statement).unwrap_or_default());
    }
    report_verified(
        &v,
        json!({"predicateType": got, "statement": statement}),
        out,
    );
    Ok(())
}
