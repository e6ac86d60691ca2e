//! Managed signing keys in cosign's files: `cosign.key` holds a PKCS#8 private key sealed
//! with NaCl secretbox (XSalsa20-Poly1305) under a key derived by scrypt from a password
//! (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, or the older `ENCRYPTED COSIGN PRIVATE KEY`),
//! `cosign.pub` the PEM public key. Keys written here open with cosign and the reverse.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::io::IsTerminal;
use std::path::Path;

pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt cost written (2^16); 2^15 and 2^17 are also read, as cosign does.
const SCRYPT_LOG_N: u8 = 16;

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

fn derive(password: &[u8], salt: &[u8], log_n: u8) -> anyhow::Result<[u8; 32]> {
    let params = scrypt::Params::new(log_n, 8, 1, 32)
        .map_err(|_| anyhow::anyhow!("invalid scrypt parameters"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|_| anyhow::anyhow!("scrypt output length"))?;
    Ok(key)
}

/// Seals PKCS#8 DER under `password`; returns the PEM text.
pub fn encrypt(pkcs8_der: &[u8], password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let key = derive(password, &salt, SCRYPT_LOG_N)?;
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), pkcs8_der)
        .map_err(|_| anyhow::anyhow!("sealing the key failed"))?;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << SCRYPT_LOG_N,
                r: 8,
                p: 1,
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    };
    Ok(sigstack_crypto::pem::encode(
        ENCRYPTED_LABEL,
        &serde_json::to_vec(&sealed)?,
    ))
}

/// Opens a sealed key (the PEM body's JSON) with `password`; returns PKCS#8 DER.
pub fn decrypt(sealed_json: &[u8], password: &[u8]) -> anyhow::Result<Vec<u8>> {
    let s: Sealed =
        serde_json::from_slice(sealed_json).context("the encrypted key's contents do not parse")?;
    if s.kdf.name != "scrypt" || s.cipher.name != "nacl/secretbox" {
        bail!(
            "the key is sealed with {} / {}; only scrypt / nacl/secretbox are supported",
            s.kdf.name,
            s.cipher.name
        );
    }
    let log_n = match (s.kdf.params.n, s.kdf.params.r, s.kdf.params.p) {
        (32768, 8, 1) => 15,
        (65536, 8, 1) => 16,
        (131072, 8, 1) => 17,
        (n, r, p) => bail!("unsupported scrypt parameters N={n} r={r} p={p}"),
    };
    let salt = STANDARD
        .decode(&s.kdf.salt)
        .context("the salt is not base64")?;
    let nonce = STANDARD
        .decode(&s.cipher.nonce)
        .context("the nonce is not base64")?;
    if nonce.len() != 24 {
        bail!("the nonce is not 24 bytes");
    }
    let ciphertext = STANDARD
        .decode(&s.ciphertext)
        .context("the ciphertext is not base64")?;
    let key = derive(password, &salt, log_n)?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| anyhow::anyhow!("wrong password for the private key (decryption failed)"))
}

/// The password: `COSIGN_PASSWORD` (which may be empty), else asked on the terminal.
pub fn password(confirm: bool) -> anyhow::Result<Vec<u8>> {
    if let Some(p) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(p.into_encoded_bytes());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: set COSIGN_PASSWORD (it may be empty) or run on a terminal");
    }
    let p = rpassword::prompt_password("Enter password for private key: ")?;
    if confirm {
        let again = rpassword::prompt_password("Enter password for private key again: ")?;
        if again != p {
            bail!("the passwords do not match");
        }
    }
    Ok(p.into_bytes())
}

/// A signing key: a cosign key file or PEM private key (or either in an environment
/// variable, `env://NAME`), a key in a PKCS#11 token (`pkcs11:…`) or in a KMS
/// (`awskms://…`); see [`sigstack_keys`].
pub fn load_signer(key: &Path) -> anyhow::Result<Box<dyn Signer>> {
    let text = key.to_string_lossy();
    if let Some(name) = text.strip_prefix("env://") {
        let value = std::env::var(name)
            .with_context(|| format!("env://{name}: the variable is not set"))?;
        return Ok(Box::new(private_key_from(value.as_bytes(), &text)?));
    }
    if sigstack_keys::is_reference(&text) {
        return sigstack_keys::open(&text);
    }
    Ok(Box::new(load_private_key(key)?))
}

/// Loads a private key file: cosign's encrypted format (asking for the password), or an
/// unencrypted PKCS#8/SEC1 PEM.
pub fn load_private_key(path: &Path) -> anyhow::Result<FileSigner> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    private_key_from(&text, &path.display().to_string())
}

fn private_key_from(text: &[u8], name: &str) -> anyhow::Result<FileSigner> {
    let blocks =
        sigstack_crypto::pem::decode_all(text).with_context(|| format!("{name} is not PEM"))?;
    let block = blocks
        .first()
        .with_context(|| format!("{name} holds no PEM block"))?;
    if block.label == ENCRYPTED_LABEL || block.label == LEGACY_LABEL {
        let der =
            decrypt(&block.der, &password(false)?).with_context(|| format!("opening {name}"))?;
        return signer_from_pkcs8(&der).with_context(|| format!("the key in {name}"));
    }
    FileSigner::from_pem(&String::from_utf8_lossy(text))
        .with_context(|| format!("{name} is not a supported private key"))
}

fn signer_from_pkcs8(der: &[u8]) -> anyhow::Result<FileSigner> {
    Ok(FileSigner::from_pem(&sigstack_crypto::pem::encode(
        "PRIVATE KEY",
        der,
    ))?)
}

/// `generate-key-pair`: a new P-256 key, sealed, as `<prefix>.key` and `<prefix>.pub`.
pub fn generate_key_pair(prefix: &str, force: bool) -> anyhow::Result<()> {
    let key_path = format!("{prefix}.key");
    let pub_path = format!("{prefix}.pub");
    for p in [&key_path, &pub_path] {
        if Path::new(p).exists() && !force {
            bail!("{p} already exists: remove it or pass --force to overwrite");
        }
    }
    let signer = FileSigner::generate(Curve::P256);
    let pkcs8 = sigstack_crypto::pem::decode_all(signer.to_pkcs8_pem()?.as_bytes())?
        .into_iter()
        .next()
        .context("PKCS#8 encoding")?
        .der;
    let sealed = encrypt(&pkcs8, &password(true)?)?;
    write_private(Path::new(&key_path), sealed.as_bytes())?;
    std::fs::write(&pub_path, signer.public_key().to_pem())
        .with_context(|| format!("writing {pub_path}"))?;
    eprintln!("Private key written to {key_path}\nPublic key written to {pub_path}");
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_with_the_right_password_only() {
        let signer = FileSigner::generate(Curve::P256);
        let der = sigstack_crypto::pem::decode_all(signer.to_pkcs8_pem().expect("test").as_bytes())
            .expect("test")
            .remove(0)
            .der;
        let pem = encrypt(&der, b"hunter2").expect("test");
        let block = sigstack_crypto::pem::decode_all(pem.as_bytes())
            .expect("test")
            .remove(0);
        assert_eq!(block.label, ENCRYPTED_LABEL);
        let v: serde_json::Value = serde_json::from_slice(&block.der).expect("test");
        assert_eq!(v["kdf"]["params"]["N"], 65536);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        assert_eq!(decrypt(&block.der, b"hunter2").expect("test"), der);
        let e = decrypt(&block.der, b"hunter3")
            .expect_err("must fail")
            .to_string();
        assert!(e.contains("wrong password"), "{e}");
        let opened = signer_from_pkcs8(&der).expect("test");
        assert_eq!(opened.public_key(), signer.public_key());
    }

    #[test]
    fn unsupported_parameters_are_refused() {
        let bad = br#"{"kdf":{"name":"scrypt","params":{"N":1024,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AA=="},"ciphertext":"AA=="}"#;
        assert!(
            decrypt(bad, b"")
                .expect_err("must fail")
                .to_string()
                .contains("N=1024")
        );
        assert!(decrypt(b"{", b"").is_err());
    }
}
