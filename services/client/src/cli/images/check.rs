//! Finding and verifying what is attached to an image: `verify`, `verify-attestation`.

use super::*;
use sigstack::attached::Check;

/// What verifying an image's attachments starts from: the policy and options of the
/// identity flags, the registry and the image's sites, and the trust material (with any
/// bring-your-own PKI applied).
struct Checking {
    policy: Policy,
    opts: sigstack::verify::Options,
    reg: Registry,
    s: Sites,
    m: Material,
}

async fn checking(
    trust: &TrustArgs,
    identity: &Identity,
    registry: &RegistryArgs,
    image: &str,
) -> anyhow::Result<Checking> {
    let policy = policy_of(identity)?;
    let opts = identity.options();
    let (reg, s) = resolve(registry, image).await?;
    let mut m = trust_material(trust).await?;
    identity.apply_pki(&mut m.trusted_root)?;
    Ok(Checking {
        policy,
        opts,
        reg,
        s,
        m,
    })
}

pub async fn verify_image(
    trust: &TrustArgs,
    a: &ImageVerifyArgs,
    out: Output,
) -> anyhow::Result<()> {
    let Checking {
        policy,
        opts,
        reg,
        s,
        m,
    } = checking(trust, &a.identity, &a.registry, &a.image).await?;
    let r = s.image.clone();
    let check = Check {
        reg: &reg,
        sites: &s,
        material: &m,
        policy: &policy,
        opts: &opts,
        rekor_url: a.rekor_url.as_deref(),
        offline: trust.offline,
        now: now(),
        layouts: Default::default(),
    };
    let found = check.signatures(&a.annotations).await?;
    if found.found == 0 {
        return Err(VerificationFailed(format!("no signatures found for {r}")).into());
    }
    let verified = found.verified;
    if verified.is_empty() {
        return Err(VerificationFailed(format!(
            "no signature of {r} verifies:\n  {}",
            found.failures.join("\n  ")
        ))
        .into());
    }
    if let Some(r_docker) = verified.iter().find_map(|v| {
        v.pointer("/critical/identity/docker-reference")
            .and_then(Value::as_str)
    }) && r_docker != docker_reference(&r)
    {
        eprintln!(
            "Note: the signature names the repository {r_docker} (it was signed there and copied here)"
        );
    }
    eprintln!(
        "\nVerification for {r} --\nThe following checks were performed on each of these signatures:\n  - the signed claims name this image's digest{}\n  - the transparency-log entry was verified (signed entry timestamp or inclusion proof against a signed checkpoint)\n  - {}",
        if a.annotations.is_empty() {
            String::new()
        } else {
            " and carry the requested annotations".into()
        },
        match policy {
            Policy::Key(_) => "the signature was verified with the given public key",
            _ =>
                "the signing certificate chains to a trusted CA at signing time, with an SCT from a trusted CT log, and names the expected identity and issuer",
        }
    );
    match out {
        Output::Json => print_json(&json!(verified)),
        Output::Text => println!("{}", serde_json::to_string(&verified)?),
    }
    Ok(())
}

pub async fn verify_attestation(
    trust: &TrustArgs,
    a: &ImageVerifyAttestationArgs,
    out: Output,
) -> anyhow::Result<()> {
    let Checking {
        policy,
        opts,
        reg,
        s,
        m,
    } = checking(trust, &a.identity, &a.registry, &a.image).await?;
    let r = s.image.clone();
    let want_type = a
        .predicate_type
        .as_deref()
        .map(predicate_type)
        .transpose()?;
    let policies = sigstack::policy::load_all(&a.policy)?;
    let check = Check {
        reg: &reg,
        sites: &s,
        material: &m,
        policy: &policy,
        opts: &opts,
        rekor_url: None,
        offline: trust.offline,
        now: now(),
        layouts: Default::default(),
    };
    let found = check.attestations(want_type.as_deref()).await?;
    if found.found == 0 {
        return Err(VerificationFailed(format!("no attestations found for {r}")).into());
    }
    let (signatures, failures) = (found.signatures, found.failures);
    // as cosign: every verified attestation must satisfy every policy
    let denied: Vec<String> = found
        .verified
        .iter()
        .flat_map(|(from, st)| {
            sigstack::policy::denials(&policies, st)
                .into_iter()
                .map(move |d| format!("{from}: {d}"))
        })
        .collect();
    let verified: Vec<Value> = found.verified.into_iter().map(|(_, st)| st).collect();
    if !denied.is_empty() {
        return Err(VerificationFailed(format!(
            "{} policy violation(s) in the attestations of {r}:\n  {}",
            denied.len(),
            denied.join("\n  ")
        ))
        .into());
    }
    if verified.is_empty() {
        if failures.is_empty() {
            return Err(VerificationFailed(format!(
                "no attestations found for {r} ({signatures} signature(s), which are not attestations)"
            ))
            .into());
        }
        return Err(VerificationFailed(format!(
            "no attestation of {r} verifies:\n  {}",
            failures.join("\n  ")
        ))
        .into());
    }
    eprintln!("Verified {} attestation(s) of {r}", verified.len());
    for st in &verified {
        match out {
            Output::Json => print_json(st),
            Output::Text => println!("{}", serde_json::to_string(st)?),
        }
    }
    Ok(())
}
