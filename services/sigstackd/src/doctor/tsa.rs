//! The timestamp authority, as a client sees it: the signing config's TSA answers a DER
//! request for a fresh digest with a granted timestamp over that digest echoing the
//! nonce, signed by the leaf of a timestamp authority the trusted root names, whose
//! certificate is not about to expire; and the chain it serves is that one.

use super::{Report, get};
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use sigstack_crypto::Certificate;
use sigstack_tsa::asn1::{MessageImprint, TimeStampReq, TimeStampResp, TstInfo};
use sigstack_types::trust::TrustedRoot;

/// The trusted root's timestamp authorities' chains (leaf first).
fn trusted_chains(trusted: &TrustedRoot) -> Vec<Vec<Certificate>> {
    trusted
        .timestamp_authorities
        .iter()
        .filter_map(|a| {
            a.cert_chain
                .certificates
                .iter()
                .map(|c| {
                    super::raw(&c.raw_bytes)
                        .ok()
                        .and_then(|d| Certificate::from_der(&d).ok())
                })
                .collect::<Option<Vec<_>>>()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// One timestamp for a random digest; the chain whose leaf signed it.
async fn stamp(
    http: &reqwest::Client,
    endpoint: &str,
    chains: &[Vec<Certificate>],
) -> anyhow::Result<Vec<Certificate>> {
    let digest: [u8; 32] = rand::random();
    // a positive nonce as a minimal DER INTEGER (no leading zero unless the top bit is set)
    let mut nonce: Vec<u8> = rand::random::<u64>()
        .max(1)
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if nonce[0] & 0x80 != 0 {
        nonce.insert(0, 0);
    }
    let nonce = Int::new(&nonce)?;
    let req = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: sigstack_tsa::HashAlg::Sha256.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(digest.to_vec())?,
        },
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: false,
        extensions: None,
    };
    let res = http
        .post(endpoint)
        .header("Content-Type", "application/timestamp-query")
        .body(req.to_der()?)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "HTTP {}", res.status());
    let resp = TimeStampResp::from_der(&res.bytes().await?)?;
    anyhow::ensure!(
        resp.status.status == 0,
        "status {} (not granted)",
        resp.status.status
    );
    let token: cms::content_info::ContentInfo = resp
        .time_stamp_token
        .ok_or_else(|| anyhow::anyhow!("no token"))?
        .decode_as()?;
    let sd: cms::signed_data::SignedData = token.content.decode_as()?;
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no TSTInfo"))?;
    let tst = TstInfo::from_der(econtent.value())?;
    anyhow::ensure!(
        tst.message_imprint.hashed_message.as_bytes() == digest,
        "the timestamp is over another digest"
    );
    anyhow::ensure!(
        tst.nonce.as_ref() == Some(&nonce),
        "the nonce is not echoed"
    );
    let si = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| anyhow::anyhow!("no signer"))?;
    let signed = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no signed attributes"))?
        .to_der()?;
    chains
        .iter()
        .find(|c| {
            c[0].public_key()
                .verify_default(&signed, si.signature.as_bytes())
                .is_ok()
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("not signed by a timestamp authority of the trusted root"))
}

pub(super) async fn check_tsa(
    http: &reqwest::Client,
    endpoint: &str,
    trusted: &TrustedRoot,
    warn: i64,
    r: &mut Report,
) {
    let chains = trusted_chains(trusted);
    if chains.is_empty() {
        return r.fail(
            "tsa",
            format!("{endpoint}: the signing config names a TSA but the trusted root lists none: clients would refuse its timestamps"),
        );
    }
    let chain = match stamp(http, endpoint, &chains).await {
        Ok(c) => c,
        Err(e) => return r.fail("tsa", format!("{endpoint}: {e:#}")),
    };
    r.ok(
        "tsa",
        format!("{endpoint}: a fresh timestamp verifies with a trusted TSA certificate"),
    );
    let now = super::now();
    r.horizon(
        "tsa",
        "TSA certificate",
        chain[0].validity().1 as i64 - now,
        warn,
        0,
    );
    match get(http, &format!("{endpoint}/certchain")).await {
        Ok(pem) => {
            let served: Vec<Vec<u8>> = sigstack_crypto::pem::decode_all(&pem)
                .unwrap_or_default()
                .into_iter()
                .map(|b| b.der)
                .collect();
            let trusted: Vec<Vec<u8>> = chain.iter().map(|c| c.der().to_vec()).collect();
            if served == trusted {
                r.ok("tsa", format!("{endpoint}/certchain: the trusted chain"));
            } else {
                r.fail(
                    "tsa",
                    format!("{endpoint}/certchain: another chain than the trusted root's"),
                );
            }
        }
        Err(e) => r.fail("tsa", format!("{endpoint}/certchain: {e:#}")),
    }
}
