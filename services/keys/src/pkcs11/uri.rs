//! RFC 7512 `pkcs11:` URIs as cosign takes them: path attributes choose the token and
//! the key, query attributes the module and the PIN; messages show a URI without its PIN.

use anyhow::{Context, anyhow, bail};
use cryptoki::types::AuthPin;

/// A parsed `pkcs11:` URI.
#[derive(Clone, Default)]
pub struct Uri {
    pub token: Option<String>,
    pub serial: Option<String>,
    pub slot_id: Option<u64>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub module_path: Option<String>,
    pin: Option<String>,
    pin_source: Option<String>,
}

impl std::fmt::Debug for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn pct_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .with_context(|| format!("`{s}`: a % must be followed by two hex digits"))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .map_err(|_| anyhow!("`{s}`: %{hex} is not a hex byte"))?,
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn pct_text(s: &str) -> anyhow::Result<String> {
    String::from_utf8(pct_decode(s)?).map_err(|_| anyhow!("`{s}` is not UTF-8 once decoded"))
}

impl Uri {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let rest = text
            .strip_prefix("pkcs11:")
            .context("a PKCS#11 key URI starts with pkcs11:")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .with_context(|| format!("pkcs11 URI: `{attr}` is not NAME=VALUE"))?;
            match k {
                "token" => u.token = Some(pct_text(v)?),
                "serial" => u.serial = Some(pct_text(v)?),
                "slot-id" => {
                    u.slot_id =
                        Some(pct_text(v)?.parse().with_context(|| {
                            format!("pkcs11 URI: slot-id `{v}` is not a number")
                        })?)
                }
                "object" => u.object = Some(pct_text(v)?),
                "id" => u.id = Some(pct_decode(v)?),
                "type" => {
                    if !matches!(v, "private" | "public") {
                        bail!("pkcs11 URI: type={v}: a signing key is type=private");
                    }
                }
                "manufacturer"
                | "model"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {}
                other => bail!("pkcs11 URI: unknown path attribute `{other}`"),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr
                .split_once('=')
                .with_context(|| format!("pkcs11 URI: `{attr}` is not NAME=VALUE"))?;
            match k {
                "module-path" => u.module_path = Some(pct_text(v)?),
                "pin-value" => u.pin = Some(pct_text(v)?),
                "pin-source" => u.pin_source = Some(pct_text(v)?),
                "module-name" => bail!(
                    "pkcs11 URI: module-name is not supported; name the module by module-path"
                ),
                other => bail!("pkcs11 URI: unknown query attribute `{other}`"),
            }
        }
        if u.object.is_none() && u.id.is_none() {
            bail!("pkcs11 URI: name the key with object=LABEL or id=%xx…");
        }
        if u.module_path.is_none() {
            u.module_path = std::env::var("COSIGN_PKCS11_MODULE_PATH")
                .ok()
                .filter(|s| !s.is_empty());
        }
        Ok(u)
    }

    /// The URI without its PIN, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={t}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s}"));
        }
        if let Some(s) = self.slot_id {
            parts.push(format!("slot-id={s}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={o}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!(
                "id={}",
                id.iter().map(|b| format!("%{b:02x}")).collect::<String>()
            ));
        }
        format!("pkcs11:{}", parts.join(";"))
    }

    pub(crate) fn pin(&self) -> anyhow::Result<Option<AuthPin>> {
        if let Some(p) = &self.pin {
            return Ok(Some(AuthPin::from(p.clone())));
        }
        if let Some(src) = &self.pin_source {
            let path = src.strip_prefix("file:").unwrap_or(src);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: reading pin-source {path}", self.describe()))?;
            return Ok(Some(AuthPin::from(
                text.trim_end_matches(['\r', '\n']).to_string(),
            )));
        }
        Ok(std::env::var("COSIGN_PKCS11_PIN")
            .ok()
            .filter(|p| !p.is_empty())
            .map(AuthPin::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_as_rfc_7512_writes_them() {
        let u = Uri::parse(
            "pkcs11:token=my%20token;object=signing;id=%01%a2?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%2634",
        )
        .expect("ok");
        assert_eq!(u.token.as_deref(), Some("my token"));
        assert_eq!(u.object.as_deref(), Some("signing"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(
            u.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin.as_deref(), Some("12&34"));
        // the PIN never appears in messages
        assert_eq!(
            u.describe(),
            "pkcs11:token=my token;object=signing;id=%01%a2"
        );
        assert!(!format!("{u:?}").contains("12&34"));
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        let err = |s: &str| format!("{:#}", Uri::parse(s).expect_err("refused"));
        assert!(err("pkcs11:token=t").contains("object="));
        assert!(err("pkcs11:token=t;object=k;colour=red").contains("colour"));
        assert!(err("pkcs11:object=k;id=%zz").contains("%zz"));
        assert!(err("pkcs11:object=k?module-name=softhsm2").contains("module-path"));
        assert!(err("pkcs11:object=k;slot-id=x").contains("slot-id"));
        assert!(err("pkcs11:object=k;type=cert").contains("type=private"));
    }
}
