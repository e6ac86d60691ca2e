//! CI system principals with fixed mappings: fulcio `pkg/identity/github`, `gitlabcom`,
//! `buildkite` and `codefresh` (`principal.go` in each). Upstream marks them deprecated in favour
//! of `ci-provider` templates but still serves them by `type`.

use serde_json::{Map, Value};

use super::{
    CiField, ExtensionValues, IdentityError, Principal, San, claim_str, required, uri_san, url,
};
use crate::config::Issuer;

fn joined(base: &str, elems: &[&str]) -> Result<String, IdentityError> {
    url::join_path(base, elems).ok_or_else(|| IdentityError::InvalidUrl {
        what: "base URL".into(),
        value: base.to_owned(),
    })
}

/// Checks every claim's type first (Go decodes the whole struct before any check), then that
/// the required ones are present, in upstream order.
fn strings(
    claims: &Map<String, Value>,
    all: &[&str],
    needed: &[&str],
) -> Result<(), IdentityError> {
    for name in all {
        claim_str(claims, name)?;
    }
    for name in needed {
        required(claims, name)?;
    }
    Ok(())
}

const GITHUB: &str = "https://github.com/";
const GITHUB_CLAIMS: [&str; 16] = [
    "job_workflow_ref",
    "sha",
    "event_name",
    "repository",
    "workflow",
    "ref",
    "job_workflow_sha",
    "runner_environment",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "repository_visibility",
    "workflow_ref",
    "workflow_sha",
    "run_id",
    "run_attempt",
];

/// `github-workflow` (fulcio `pkg/identity/github/principal.go`).
pub(super) fn github(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    strings(claims, &GITHUB_CLAIMS, &GITHUB_CLAIMS)?;
    let sub = required(claims, "sub")?;
    let c = |name| claim_str(claims, name).unwrap_or_default();
    let signer = joined(GITHUB, &[c("job_workflow_ref")])?;
    let mut e = ExtensionValues::new(issuer.issuer_url.clone(), sub);
    e.set(CiField::GithubWorkflowTrigger, c("event_name"));
    e.set(CiField::GithubWorkflowSha, c("sha"));
    e.set(CiField::GithubWorkflowName, c("workflow"));
    e.set(CiField::GithubWorkflowRepository, c("repository"));
    e.set(CiField::GithubWorkflowRef, c("ref"));
    e.set(CiField::BuildSignerUri, signer.clone());
    e.set(CiField::BuildSignerDigest, c("job_workflow_sha"));
    e.set(CiField::RunnerEnvironment, c("runner_environment"));
    e.set(
        CiField::SourceRepositoryUri,
        joined(GITHUB, &[c("repository")])?,
    );
    e.set(CiField::SourceRepositoryDigest, c("sha"));
    e.set(CiField::SourceRepositoryRef, c("ref"));
    e.set(CiField::SourceRepositoryIdentifier, c("repository_id"));
    e.set(
        CiField::SourceRepositoryOwnerUri,
        joined(GITHUB, &[c("repository_owner")])?,
    );
    e.set(
        CiField::SourceRepositoryOwnerIdentifier,
        c("repository_owner_id"),
    );
    e.set(
        CiField::BuildConfigUri,
        joined(GITHUB, &[c("workflow_ref")])?,
    );
    e.set(CiField::BuildConfigDigest, c("workflow_sha"));
    e.set(CiField::BuildTrigger, c("event_name"));
    let run = [
        c("repository"),
        "actions/runs",
        c("run_id"),
        "attempts",
        c("run_attempt"),
    ];
    e.set(CiField::RunInvocationUri, joined(GITHUB, &run)?);
    e.set(
        CiField::SourceRepositoryVisibilityAtSigning,
        c("repository_visibility"),
    );
    Ok(Principal {
        name: sub.to_owned(),
        san: San::Uri(signer),
        extensions: e.render()?,
    })
}

const GITLAB: &str = "https://gitlab.com/";
const GITLAB_REQUIRED: [&str; 12] = [
    "project_path",
    "pipeline_source",
    "pipeline_id",
    "ci_config_ref_uri",
    "job_id",
    "ref",
    "ref_type",
    "namespace_path",
    "namespace_id",
    "project_id",
    "sha",
    "runner_environment",
];

/// `gitlab-pipeline` (fulcio `pkg/identity/gitlabcom/principal.go`).
pub(super) fn gitlab(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let mut all = GITLAB_REQUIRED.to_vec();
    all.extend(["ci_config_sha", "project_visibility"]);
    for name in &all {
        claim_str(claims, name)?;
    }
    let runner_id = match claims.get("runner_id") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| IdentityError::ClaimType {
            claim: "runner_id".into(),
            expected: "integer",
        })?,
    };
    strings(claims, &[], &GITLAB_REQUIRED)?;
    if runner_id == 0 {
        return Err(IdentityError::MissingClaim("runner_id".into()));
    }
    let sub = required(claims, "sub")?;
    let c = |name| claim_str(claims, name).unwrap_or_default();
    let git_ref = match c("ref_type") {
        "branch" => format!("refs/heads/{}", c("ref")),
        "tag" => format!("refs/tags/{}", c("ref")),
        other => return Err(IdentityError::InvalidRefType(other.to_owned())),
    };
    let config_uri = https_uri(c("ci_config_ref_uri"))?;
    let mut e = ExtensionValues::new(issuer.issuer_url.clone(), sub);
    e.set(CiField::BuildConfigUri, config_uri.clone());
    e.set(CiField::BuildConfigDigest, c("ci_config_sha"));
    e.set(CiField::BuildSignerUri, config_uri.clone());
    e.set(CiField::BuildSignerDigest, c("ci_config_sha"));
    e.set(CiField::RunnerEnvironment, c("runner_environment"));
    e.set(
        CiField::SourceRepositoryUri,
        joined(GITLAB, &[c("project_path")])?,
    );
    e.set(CiField::SourceRepositoryDigest, c("sha"));
    e.set(CiField::SourceRepositoryRef, git_ref);
    e.set(CiField::SourceRepositoryIdentifier, c("project_id"));
    e.set(
        CiField::SourceRepositoryOwnerUri,
        joined(GITLAB, &[c("namespace_path")])?,
    );
    e.set(CiField::SourceRepositoryOwnerIdentifier, c("namespace_id"));
    e.set(CiField::BuildTrigger, c("pipeline_source"));
    let run = [c("project_path"), "/-/jobs/", c("job_id")];
    e.set(CiField::RunInvocationUri, joined(GITLAB, &run)?);
    e.set(
        CiField::SourceRepositoryVisibilityAtSigning,
        c("project_visibility"),
    );
    Ok(Principal {
        name: sub.to_owned(),
        san: San::Uri(config_uri),
        extensions: e.render()?,
    })
}

/// `ci_config_ref_uri` (`gitlab.com/group/project//.gitlab-ci.yml@refs/heads/main`) with its
/// scheme set to https, as upstream does through `url.URL`.
fn https_uri(value: &str) -> Result<String, IdentityError> {
    let bad = || IdentityError::InvalidUrl {
        what: "claim ci_config_ref_uri".into(),
        value: value.to_owned(),
    };
    let u = url::parse(value).ok_or_else(bad)?;
    let path = url::escape_path(u.path);
    if u.has_authority {
        let authority = u.prefix.find("//").map_or("", |i| &u.prefix[i + 2..]);
        Ok(format!("https://{authority}{path}{}", u.suffix))
    } else if u.scheme.is_empty() {
        Ok(format!("https://{path}{}", u.suffix))
    } else {
        Err(bad())
    }
}

/// `buildkite-job` (fulcio `pkg/identity/buildkite/principal.go`).
pub(super) fn buildkite(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let names = ["organization_slug", "pipeline_slug"];
    strings(claims, &names, &names)?;
    let sub = required(claims, "sub")?;
    let c = |name| claim_str(claims, name).unwrap_or_default();
    let pipeline = format!(
        "https://buildkite.com/{}/{}",
        c("organization_slug"),
        c("pipeline_slug")
    );
    Ok(Principal {
        name: sub.to_owned(),
        san: uri_san("pipeline URL", &pipeline)?,
        extensions: ExtensionValues::new(issuer.issuer_url.clone(), sub).render()?,
    })
}

const CODEFRESH_CLAIMS: [&str; 12] = [
    "account_id",
    "account_name",
    "pipeline_id",
    "pipeline_name",
    "workflow_id",
    "initiator",
    "scm_repo_url",
    "scm_user_name",
    "scm_ref",
    "scm_pull_request_target_branch",
    "runner_environment",
    "platform_url",
];

/// `codefresh-workflow` (fulcio `pkg/identity/codefresh/principal.go`).
pub(super) fn codefresh(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    strings(
        claims,
        &CODEFRESH_CLAIMS,
        &["account_id", "pipeline_id", "workflow_id"],
    )?;
    let sub = required(claims, "sub")?;
    let c = |name| claim_str(claims, name).unwrap_or_default();
    let platform = match c("platform_url") {
        "" => "https://g.codefresh.io",
        p => p,
    };
    let join = |elems: &[&str]| {
        url::join_path(platform, elems).ok_or_else(|| IdentityError::InvalidUrl {
            what: "claim platform_url".into(),
            value: platform.to_owned(),
        })
    };
    let pipeline = format!(
        "{}:{}/{}",
        c("pipeline_name"),
        c("account_id"),
        c("pipeline_id")
    );
    let san = join(&[c("account_name"), &pipeline])?;
    let mut e = ExtensionValues::new(issuer.issuer_url.clone(), sub);
    e.set(CiField::BuildSignerUri, join(&["build", c("workflow_id")])?);
    e.set(CiField::RunnerEnvironment, c("runner_environment"));
    e.set(CiField::SourceRepositoryUri, c("scm_repo_url"));
    e.set(CiField::SourceRepositoryRef, c("scm_ref"));
    e.set(
        CiField::BuildConfigUri,
        join(&["api", "pipelines", c("pipeline_id")])?,
    );
    e.set(
        CiField::RunInvocationUri,
        join(&["build", c("workflow_id")])?,
    );
    Ok(Principal {
        name: sub.to_owned(),
        san: San::Uri(san),
        extensions: e.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::principal;
    use super::super::tests::{
        GITHUB_EXTS, GITHUB_SUB_EXT, claims, github_claims, hex_exts, issuer,
    };
    use super::*;
    use crate::config::IssuerConfig;
    use serde_json::json;

    #[test]
    fn github_workflow_exact_bytes() {
        let cfg = IssuerConfig::parse(
            "oidc-issuers:\n  https://token.actions.githubusercontent.com:\n    client-id: sigstore\n    type: github-workflow\n",
        )
        .expect("valid");
        let iss = cfg
            .lookup("https://token.actions.githubusercontent.com")
            .expect("configured");
        let p = principal(&iss, &cfg, &claims(github_claims())).expect("valid");
        assert_eq!(p.name, "repo:o/r:ref:refs/heads/main");
        assert_eq!(
            p.san,
            San::Uri("https://github.com/o/r/.github/workflows/rel.yml@refs/heads/main".into())
        );
        let mut want: Vec<&str> = GITHUB_EXTS.to_vec();
        want.push(GITHUB_SUB_EXT);
        assert_eq!(hex_exts(&p), want);
    }

    #[test]
    fn github_missing_and_mistyped_claims() {
        let (iss, cfg) = issuer("    client-id: x\n    type: github-workflow\n");
        let mut c = claims(github_claims());
        c.remove("run_attempt");
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::MissingClaim("run_attempt".into()))
        );
        assert_eq!(
            IdentityError::MissingClaim("job_workflow_ref".into()).to_string(),
            "token has no job_workflow_ref claim"
        );
        c.insert("run_attempt".into(), json!(1));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::ClaimType {
                claim: "run_attempt".into(),
                expected: "string"
            })
        );
    }

    fn gitlab_claims() -> Map<String, Value> {
        claims(json!({
            "sub": "project_path:g/p:ref_type:branch:ref:main", "project_path": "g/p",
            "project_id": "7", "pipeline_source": "push", "pipeline_id": "5",
            "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main",
            "ci_config_sha": "def", "namespace_path": "g", "namespace_id": "8", "job_id": "99",
            "ref": "main", "ref_type": "branch", "sha": "def", "runner_environment": "gitlab-hosted",
            "runner_id": 12, "project_visibility": "public",
        }))
    }

    #[test]
    fn gitlab_pipeline_fixed_mapping() {
        let (iss, cfg) = issuer("    client-id: x\n    type: gitlab-pipeline\n");
        let p = principal(&iss, &cfg, &gitlab_claims()).expect("valid");
        assert_eq!(p.name, "project_path:g/p:ref_type:branch:ref:main");
        let uri = "https://gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main";
        assert_eq!(p.san, San::Uri(uri.into()));
        let oids: Vec<String> = p.extensions.iter().map(|e| e.oid.to_string()).collect();
        let arcs: Vec<&str> = oids.iter().filter_map(|o| o.rsplit('.').next()).collect();
        assert_eq!(
            arcs,
            [
                "1", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
                "21", "22", "24"
            ]
        );
        let text = |i: usize| String::from_utf8_lossy(&p.extensions[i].value[2..]).into_owned();
        assert_eq!(text(2), uri);
        assert_eq!(text(7), "refs/heads/main");
        assert_eq!(text(14), "https://gitlab.com/g/p/-/jobs/99");
        let mut c = gitlab_claims();
        c.insert("ref_type".into(), json!("merge"));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::InvalidRefType("merge".into()))
        );
        c.insert("runner_id".into(), json!(0));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::MissingClaim("runner_id".into()))
        );
        assert_eq!(
            https_uri("https://gitlab.example.com/a/b").as_deref(),
            Ok("https://gitlab.example.com/a/b")
        );
        assert_eq!(
            https_uri("http://gitlab.example.com/a").as_deref(),
            Ok("https://gitlab.example.com/a")
        );
    }

    #[test]
    fn buildkite_and_codefresh() {
        let (iss, cfg) = issuer("    client-id: x\n    type: buildkite-job\n");
        let c = claims(
            json!({"sub": "organization:acme:pipeline:app", "organization_slug": "acme", "pipeline_slug": "app"}),
        );
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(p.san, San::Uri("https://buildkite.com/acme/app".into()));
        assert_eq!(p.extensions.len(), 3);
        let c = claims(json!({"sub": "s", "organization_slug": "acme"}));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::MissingClaim("pipeline_slug".into()))
        );

        let (iss, cfg) = issuer("    client-id: x\n    type: codefresh-workflow\n");
        let c = claims(
            json!({"sub": "account:a1:pipeline:p1", "account_id": "a1", "account_name": "acct",
                              "pipeline_id": "p1", "pipeline_name": "proj/pipe", "workflow_id": "w1",
                              "scm_repo_url": "https://github.com/o/r", "scm_ref": "main"}),
        );
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(
            p.san,
            San::Uri("https://g.codefresh.io/acct/proj/pipe:a1/p1".into())
        );
        let text = |i: usize| String::from_utf8_lossy(&p.extensions[i].value[2..]).into_owned();
        assert_eq!(text(2), "https://g.codefresh.io/build/w1");
        assert_eq!(text(3), "https://github.com/o/r");
        assert_eq!(text(4), "main");
        assert_eq!(text(5), "https://g.codefresh.io/api/pipelines/p1");
        assert_eq!(text(6), "https://g.codefresh.io/build/w1");
        let c = claims(json!({"sub": "s", "account_id": "a1", "pipeline_id": "p1"}));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::MissingClaim("workflow_id".into()))
        );
    }
}
