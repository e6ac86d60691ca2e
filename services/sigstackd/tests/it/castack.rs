//! The CA test fixture: `sigstackd ctlog` and `sigstackd ca` as separate processes on
//! either backend, a generated CA chain, a test issuer the CA trusts, and helpers to
//! build requests and check what comes back.

use crate::issuer::{TestIssuer, now};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::Encode;
use serde_json::{Value, json};
use sigstack_ca::cert;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, PublicKey, Signer};
use sigstack_log::ct;
use sigstack_merkle::{leaf_hash, verify_inclusion};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `sigstackd <service>` child process, killed on drop.
pub struct Proc {
    child: Child,
    pub url: String,
}

impl Proc {
    pub async fn spawn(
        service: &str,
        prefix: &str,
        env: &[(&str, String)],
        dir: &std::path::Path,
        config: Option<&std::path::Path>,
    ) -> Proc {
        Self::spawn_on(free_port(), service, prefix, env, dir, config).await
    }

    /// As [`Proc::spawn`], on a port chosen beforehand (for services that must know each
    /// other's URLs before they start).
    pub async fn spawn_on(
        port: u16,
        service: &str,
        prefix: &str,
        env: &[(&str, String)],
        dir: &std::path::Path,
        config: Option<&std::path::Path>,
    ) -> Proc {
        let log = std::fs::File::create(dir.join(format!("{service}.log"))).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sigstackd"));
        cmd.arg(service);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.env(format!("{prefix}LISTEN"), format!("127.0.0.1:{port}"))
            .env("SIGSTACK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(format!("{prefix}{k}"), v);
        }
        let mut child = cmd.spawn().expect("spawn");
        let url = format!("http://127.0.0.1:{port}");
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{url}/healthz")).send().await
                && r.status() == 200
            {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "sigstackd {service} exited with {st}; logs in {}",
                    dir.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sigstackd {service} did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Proc { child, url }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct CaStack {
    pub ca: Proc,
    pub ctlog: Proc,
    pub ct_key: PublicKey,
    pub chain: Vec<Certificate>,
    pub issuer: TestIssuer,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

fn write_key(dir: &std::path::Path, name: &str, key: &FileSigner) -> PathBuf {
    let p = dir.join(name);
    crate::support::write_private(&p, key.to_pkcs8_pem().expect("pem"));
    p
}

impl CaStack {
    pub async fn start(backend: Backend) -> CaStack {
        Self::start_trusting(backend, &[]).await
    }

    /// Also trusts these issuers as e-mail issuers (client ID `sigstore`).
    pub async fn start_trusting(backend: Backend, email_issuers: &[&str]) -> CaStack {
        let entries: String = email_issuers
            .iter()
            .map(|url| format!("  {url:?}:\n    issuer-url: {url:?}\n    client-id: sigstore\n    type: email\n"))
            .collect();
        Self::start_with_issuers(backend, &entries).await
    }

    /// Also trusts the issuers of `entries` (Fulcio `oidc-issuers` entries, YAML indented
    /// by two spaces).
    pub async fn start_with_issuers(backend: Backend, entries: &str) -> CaStack {
        let dir = temp_dir("ca");
        let issuer = TestIssuer::start().await;
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("ct.db").display()),
            Backend::Postgres => fresh_pg_database(&pg_admin_url()).await,
        };
        let root_key = FileSigner::generate(Curve::P384);
        let inter_key = FileSigner::generate(Curve::P384);
        let t = now() as u64 - 60;
        let root_name = cert::ca_name("test", "test root").expect("name");
        let root = cert::ca_certificate(
            root_name.clone(),
            &root_key,
            None,
            cert::serial([1; 20]).expect("s"),
            t,
            t + 86400,
            None,
            false,
        )
        .expect("root");
        let inter = cert::ca_certificate(
            cert::ca_name("test", "test intermediate").expect("name"),
            &inter_key,
            Some((&root_name, &root_key)),
            cert::serial([2; 20]).expect("s"),
            t,
            t + 86400,
            Some(0),
            true,
        )
        .expect("inter");
        let chain = vec![
            Certificate::from_der(&inter).expect("c"),
            Certificate::from_der(&root).expect("c"),
        ];
        let chain_path = dir.join("chain.pem");
        std::fs::write(
            &chain_path,
            chain.iter().map(Certificate::to_pem).collect::<String>(),
        )
        .expect("chain");
        let root_path = dir.join("root.pem");
        std::fs::write(&root_path, chain[1].to_pem()).expect("root");
        let ct_key = FileSigner::generate(Curve::P256);
        let ct_pub = dir.join("ct.pub.pem");
        std::fs::write(&ct_pub, ct_key.public_key().to_pem()).expect("pub");
        let issuers = dir.join("issuers.yaml");
        std::fs::write(
            &issuers,
            format!(
                "oidc-issuers:\n  {u:?}:\n    issuer-url: {u:?}\n    client-id: sigstore\n    type: email\n\
                 meta-issuers:\n  \"http://127.0.0.1:*/k8s\":\n    client-id: sigstore\n    type: kubernetes\n",
                u = issuer.url
            ),
        )
        .expect("issuers");
        if !entries.is_empty() {
            let text = std::fs::read_to_string(&issuers).expect("issuers");
            let text = text.replacen("oidc-issuers:\n", &format!("oidc-issuers:\n{entries}"), 1);
            std::fs::write(&issuers, text).expect("issuers");
        }
        let ctlog = Proc::spawn(
            "ctlog",
            "SIGSTACK_CTLOG_",
            &[
                ("DATABASE_URL", database_url),
                (
                    "SIGNING_KEY",
                    write_key(&dir, "ct.pem", &ct_key).display().to_string(),
                ),
                ("ROOTS", root_path.display().to_string()),
            ],
            &dir,
            None,
        )
        .await;
        let ca = Proc::spawn(
            "ca",
            "SIGSTACK_CA_",
            &[
                (
                    "SIGNING_KEY",
                    write_key(&dir, "inter.pem", &inter_key)
                        .display()
                        .to_string(),
                ),
                ("CA_CHAIN", chain_path.display().to_string()),
                ("ISSUERS", issuers.display().to_string()),
                ("CTLOG_URL", ctlog.url.clone()),
                ("CTLOG_PUBLIC_KEY", ct_pub.display().to_string()),
            ],
            &dir,
            None,
        )
        .await;
        CaStack {
            ca,
            ctlog,
            ct_key: ct_key.public_key().clone(),
            chain,
            issuer,
            dir,
            http: http(),
        }
    }

    pub async fn sign_cert(&self, body: &Value, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v2/signingCert", self.ca.url))
            .json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("send");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn tree_size(&self) -> u64 {
        let (s, sth) = get_json(&self.http, &format!("{}/ct/v1/get-sth", self.ctlog.url)).await;
        assert_eq!(s, 200);
        sth["tree_size"].as_u64().expect("size")
    }

    /// Checks a returned chain: profile, issuer, and one SCT that verifies with the CT
    /// key and is included in the CT log. Returns the leaf.
    pub async fn check_chain(&self, pems: &[Value], key: &PublicKey) -> Certificate {
        assert_eq!(pems.len(), 3, "leaf, intermediate, root");
        let certs: Vec<Certificate> = pems
            .iter()
            .map(|p| {
                match KeyMaterial::from_pem(p.as_str().expect("pem").as_bytes()).expect("pem") {
                    KeyMaterial::Certificates(mut c) => c.remove(0),
                    _ => panic!("not a certificate"),
                }
            })
            .collect();
        assert_eq!(certs[1].der(), self.chain[0].der());
        assert_eq!(certs[2].der(), self.chain[1].der());
        let leaf = certs[0].clone();
        leaf.verify_issued_by(&self.chain[0])
            .expect("issued by the intermediate");
        assert_eq!(leaf.public_key(), key, "certifies the submitted key");
        let (nb, na) = leaf.validity();
        assert_eq!(na - nb, 600, "10 minutes");
        assert_eq!(leaf.extended_key_usages(), vec!["1.3.6.1.5.5.7.3.3"]);
        let scts = ct::embedded_scts(&leaf).expect("scts");
        assert_eq!(scts.len(), 1, "exactly one embedded SCT");
        assert!(scts[0].extensions.is_empty());
        let entry = ct::embedded_entry(&leaf, &self.chain[0]).expect("entry");
        scts[0]
            .verify(&self.ct_key, &entry)
            .expect("SCT verifies over the precert");
        // the precertificate is in the CT log: prove it against a signed tree head
        let leaf_input = ct::merkle_tree_leaf(scts[0].timestamp, &entry, &[]).expect("leaf");
        let (_, sth) = get_json(&self.http, &format!("{}/ct/v1/get-sth", self.ctlog.url)).await;
        let size = sth["tree_size"].as_u64().expect("size");
        let root: [u8; 32] = STANDARD
            .decode(sth["sha256_root_hash"].as_str().expect("root"))
            .expect("b64")
            .try_into()
            .expect("32");
        let sig = ct::DigitallySigned::from_bytes(
            &STANDARD
                .decode(sth["tree_head_signature"].as_str().expect("sig"))
                .expect("b64"),
        )
        .expect("ds");
        sig.verify(
            &self.ct_key,
            &ct::sth_signature_input(sth["timestamp"].as_u64().expect("ts"), size, &root),
        )
        .expect("STH signature");
        let h = leaf_hash(&leaf_input);
        let q = url_escape(&STANDARD.encode(h));
        let (s, proof) = get_json(
            &self.http,
            &format!(
                "{}/ct/v1/get-proof-by-hash?hash={q}&tree_size={size}",
                self.ctlog.url
            ),
        )
        .await;
        assert_eq!(s, 200, "{proof}");
        let path = hashes(&proof["audit_path"]);
        verify_inclusion(
            &h,
            proof["leaf_index"].as_u64().expect("i"),
            size,
            &path,
            &root,
        )
        .expect("inclusion");
        leaf
    }
}

/// A JSON array of base64 hashes.
pub fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .expect("array of hashes")
        .iter()
        .map(|p| {
            STANDARD
                .decode(p.as_str().expect("string"))
                .expect("base64")
                .try_into()
                .expect("32 bytes")
        })
        .collect()
}

fn url_escape(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// A PEM PKCS#10 request for `key`, self-signed (or signed by `signer` to forge one).
pub fn csr(key: &FileSigner, signer: &FileSigner) -> String {
    use der::Decode;
    use x509_cert::request::{CertReq, CertReqInfo};
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: Default::default(),
        public_key: x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(
            key.public_key().spki_der(),
        )
        .expect("spki"),
        attributes: Default::default(),
    };
    let sig = signer.sign(&info.to_der().expect("der")).expect("sign");
    let req = CertReq {
        info,
        algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: sigstack_crypto::sig_oid::ECDSA_SHA256,
            parameters: None,
        },
        signature: der::asn1::BitString::from_bytes(&sig).expect("bits"),
    };
    sigstack_crypto::pem::encode("CERTIFICATE REQUEST", &req.to_der().expect("der"))
}

pub fn pop_request(token: &str, key: &FileSigner, challenge: &str) -> Value {
    json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": key.public_key().to_pem()},
            "proofOfPossession": STANDARD.encode(key.sign(challenge.as_bytes()).expect("sign")),
        }
    })
}
