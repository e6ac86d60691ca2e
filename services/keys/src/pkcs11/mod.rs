//! Keys in a PKCS#11 token, named by RFC 7512 URIs as cosign takes them:
//! `pkcs11:token=LABEL;object=KEY?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234`.
//!
//! Path attributes: `token`, `serial`, `slot-id` choose the token (one of them is needed
//! when the module has several); `object` (the key's label) and `id` (its `CKA_ID`,
//! percent-encoded bytes) choose the key. Query attributes: `module-path` (else
//! `COSIGN_PKCS11_MODULE_PATH`), `pin-value` or `pin-source` (a file holding the PIN;
//! else `COSIGN_PKCS11_PIN`). The private key never leaves the token: signing is
//! `CKM_ECDSA` over the digest (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512),
//! `CKM_SHA256_RSA_PKCS`, or `CKM_EDDSA` (Ed25519).
//!
//! Sessions are pooled: each signature borrows a logged-in session, so concurrent
//! requests sign in parallel and the login happens once. A session that fails with an
//! error that says the token or session went away is dropped and the signature retried
//! on a fresh one; if that fails too the module is initialised again (once no signature
//! is in flight), so a token that went away and came back is used without a restart.

use anyhow::{Context, anyhow, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use sigstack_crypto::{CryptoError, PublicKey, Signer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::KeyKind;
use crate::der;

mod objects;
mod uri;
use objects::{OID_ED25519, OID_P256, OID_P384, find_one, public_spki};
pub use uri::Uri;

/// A loaded module and its generation: how many times it has been initialised again.
/// Every use of a session holds the generation's read lock; initialising the module
/// again takes the write lock, so no session handle is used across it (handles start
/// over after `C_Initialize`, and an old one could name another key's session).
#[derive(Clone)]
struct Module {
    ctx: Pkcs11,
    path: String,
    generation: Arc<RwLock<u64>>,
}

impl Module {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, u64> {
        self.generation.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Finalises the module and initialises it again — how a token that went away (a
    /// device removed, a network HSM restarted, a token store replaced) is found again —
    /// unless another signer has done so since it saw generation `seen`.
    fn reinitialize(&self, seen: u64) -> anyhow::Result<()> {
        let mut g = self.generation.write().unwrap_or_else(|p| p.into_inner());
        if *g == seen {
            let _ = self.ctx.clone().finalize();
            // sessions of the old generation are void whether or not this succeeds
            *g += 1;
            initialize(&self.ctx, &self.path)?;
        }
        Ok(())
    }
}

fn initialize(ctx: &Pkcs11, path: &str) -> anyhow::Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("initialising the PKCS#11 module {path}")),
    }
}

/// Each module is loaded and initialised once per process (PKCS#11 allows one
/// `C_Initialize` per application).
fn module(path: &str) -> anyhow::Result<Module> {
    static MODULES: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();
    let mut map = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    if !std::path::Path::new(path).exists() {
        bail!("PKCS#11 module {path} does not exist");
    }
    let ctx = Pkcs11::new(path).with_context(|| format!("loading the PKCS#11 module {path}"))?;
    initialize(&ctx, path)?;
    let m = Module {
        ctx,
        path: path.to_string(),
        generation: Arc::new(RwLock::new(0)),
    };
    map.insert(path.to_string(), m.clone());
    Ok(m)
}

fn rv(e: &P11Error) -> Option<RvError> {
    match e {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Short words for the errors a person can act on; the module's text for the rest.
fn explain(e: P11Error, what: &str) -> anyhow::Error {
    let why = match rv(&e) {
        Some(RvError::PinIncorrect) => "wrong PIN".to_string(),
        Some(RvError::PinLocked) => "the PIN is locked".to_string(),
        Some(RvError::PinExpired) => "the PIN has expired".to_string(),
        Some(RvError::UserNotLoggedIn) => {
            "the token needs a PIN: give pin-value or pin-source in the URI, or set COSIGN_PKCS11_PIN"
                .to_string()
        }
        Some(RvError::TokenNotPresent | RvError::DeviceRemoved) => {
            "the token is not present".to_string()
        }
        Some(RvError::KeyTypeInconsistent | RvError::MechanismInvalid) => {
            "the key cannot sign with this mechanism".to_string()
        }
        Some(rv) => format!("{rv:?}"),
        None => e.to_string(),
    };
    anyhow!("{what}: {why}")
}

/// The errors after which a session is not used again and the operation is retried on a
/// fresh one.
fn session_gone(e: &P11Error) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
        )
    )
}

/// The slot of the token the URI names. A token store shared by processes starting at
/// once may fail a listing, or miss a token, for a moment: a few tries, a little apart.
fn find_slot(ctx: &Pkcs11, uri: &Uri) -> anyhow::Result<Slot> {
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match find_slot_once(ctx, uri) {
            Ok(s) => return Ok(s),
            Err(e) if attempt < 6 => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

fn find_slot_once(ctx: &Pkcs11, uri: &Uri) -> anyhow::Result<Slot> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| explain(e, "listing the PKCS#11 slots"))?;
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| explain(e, "reading a token's information"))?;
        let label = info.label().trim().to_string();
        let serial = info.serial_number().trim().to_string();
        let ok = uri.token.as_ref().is_none_or(|t| *t == label)
            && uri.serial.as_ref().is_none_or(|s| *s == serial)
            && uri.slot_id.is_none_or(|i| i == slot.id());
        seen.push(format!("`{label}` (serial {serial}, slot {})", slot.id()));
        if ok {
            found.push(slot);
        }
    }
    match found.len() {
        1 => Ok(found[0]),
        0 if seen.is_empty() => bail!("{}: the module has no initialised token", uri.describe()),
        0 => bail!(
            "{}: no such token; the module has {}",
            uri.describe(),
            seen.join(", ")
        ),
        _ => bail!(
            "{}: several tokens match ({}); name one with token=, serial= or slot-id=",
            uri.describe(),
            seen.join(", ")
        ),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Alg {
    Ecdsa,
    Rsa,
    Ed25519,
}

/// A signing key held in a PKCS#11 token.
pub struct Pkcs11Signer {
    module: Module,
    /// The token's slot, as found in a generation of the module.
    slot: Mutex<(u64, Slot)>,
    uri: Uri,
    pin: Option<AuthPin>,
    public: PublicKey,
    alg: Alg,
    pool: Mutex<Vec<Pooled>>,
}

impl Drop for Pkcs11Signer {
    fn drop(&mut self) {
        let guard = self.module.read();
        self.drain(*guard);
    }
}

/// A logged-in session with the key's handle in it, of a module generation.
struct Pooled {
    session: Session,
    key: ObjectHandle,
    generation: u64,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key", &self.uri.describe())
            .field("public", &self.public.describe())
            .finish()
    }
}

/// Opens a session on the token and logs in (a session of an application already logged
/// in is logged in too).
fn open_session(
    ctx: &Pkcs11,
    slot: Slot,
    uri: &Uri,
    pin: Option<&AuthPin>,
    rw: bool,
) -> anyhow::Result<Session> {
    // a token shared by several processes may fail one of them for a moment (SoftHSM's
    // file store while another process writes it; a network HSM's connection): a few
    // tries, a little apart, before the error is the caller's
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match try_open_session(ctx, slot, pin, rw) {
            Ok(s) => return Ok(s),
            Err((e, _)) if attempt < 6 && transient(&e) => {
                std::thread::sleep(std::time::Duration::from_millis(25 * attempt));
            }
            Err((e, what)) => return Err(explain(e, &format!("{}: {what}", uri.describe()))),
        }
    }
}

fn try_open_session(
    ctx: &Pkcs11,
    slot: Slot,
    pin: Option<&AuthPin>,
    rw: bool,
) -> Result<Session, (P11Error, &'static str)> {
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| (e, "opening a session"))?;
    if let Some(pin) = pin {
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err((e, "logging in")),
        }
    }
    Ok(session)
}

/// Errors a token gives for a moment. Never a wrong PIN: that is not tried again, so a
/// PIN is not sent over and over towards a lockout.
fn transient(e: &P11Error) -> bool {
    matches!(
        rv(e),
        Some(RvError::GeneralError | RvError::DeviceError | RvError::FunctionFailed)
    )
}

fn context_for(uri: &Uri) -> anyhow::Result<(Module, Slot)> {
    let path = uri.module_path.as_deref().with_context(|| {
        format!(
            "{}: no PKCS#11 module: add ?module-path=/path/to/module.so or set COSIGN_PKCS11_MODULE_PATH",
            uri.describe()
        )
    })?;
    let m = module(path)?;
    let slot = find_slot(&m.ctx, uri)?;
    Ok((m, slot))
}

/// Checks that the token the URI names can be reached and logged in to (read-write, as
/// creating keys needs).
pub fn check_login(uri: &Uri) -> anyhow::Result<()> {
    let (m, slot) = context_for(uri)?;
    let pin = uri.pin()?;
    let _g = m.read();
    open_session(&m.ctx, slot, uri, pin.as_ref(), true)?;
    Ok(())
}

impl Pkcs11Signer {
    /// Finds the key the URI names (its private and public objects) and checks it can
    /// sign.
    pub fn open(uri: &Uri) -> anyhow::Result<Self> {
        Self::find(uri)?.with_context(|| {
            format!(
                "{}: no such private key in the token{}",
                uri.describe(),
                if uri.pin().ok().flatten().is_none() {
                    " (no PIN was given: private objects are hidden until login)"
                } else {
                    ""
                }
            )
        })
    }

    /// The key the URI names, or None when the token has no such private key.
    pub fn find(uri: &Uri) -> anyhow::Result<Option<Self>> {
        let (m, slot) = context_for(uri)?;
        let pin = uri.pin()?;
        let guard = m.read();
        let generation = *guard;
        let session = open_session(&m.ctx, slot, uri, pin.as_ref(), false)?;
        let Some(private) = find_one(&session, uri, ObjectClass::PRIVATE_KEY)? else {
            return Ok(None);
        };
        let public_obj = find_one(&session, uri, ObjectClass::PUBLIC_KEY)?.with_context(|| {
            format!(
                "{}: the token holds no public key object for this key",
                uri.describe()
            )
        })?;
        let spki = public_spki(&session, public_obj, &uri.describe())?;
        let public =
            PublicKey::from_spki_der(&spki).map_err(|e| anyhow!("{}: {e}", uri.describe()))?;
        let d = public.describe();
        let alg = if d.starts_with("ECDSA") {
            Alg::Ecdsa
        } else if d.starts_with("RSA") {
            Alg::Rsa
        } else {
            Alg::Ed25519
        };
        drop(guard);
        Ok(Some(Self {
            module: m,
            slot: Mutex::new((generation, slot)),
            uri: uri.clone(),
            pin,
            public,
            alg,
            pool: Mutex::new(vec![Pooled {
                session,
                key: private,
                generation,
            }]),
        }))
    }

    /// Creates a key pair in the token (not extractable, sensitive) and opens it. Refuses
    /// when a key by that name is already there.
    pub fn generate(uri: &Uri, kind: KeyKind) -> anyhow::Result<Self> {
        let (m, slot) = context_for(uri)?;
        let pin = uri.pin()?;
        let guard = m.read();
        let session = open_session(&m.ctx, slot, uri, pin.as_ref(), true)?;
        if find_one(&session, uri, ObjectClass::PRIVATE_KEY)?.is_some() {
            bail!(
                "{}: a key by that name already exists in the token",
                uri.describe()
            );
        }
        let mut common = Vec::new();
        if let Some(o) = &uri.object {
            common.push(Attribute::Label(o.as_bytes().to_vec()));
        }
        let id = uri.id.clone().unwrap_or_else(|| {
            sigstack_crypto::sha256(uri.object.as_deref().unwrap_or_default().as_bytes())[..8]
                .to_vec()
        });
        common.push(Attribute::Id(id.clone()));
        let mut public = vec![Attribute::Token(true), Attribute::Verify(true)];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ];
        let mechanism = match kind {
            KeyKind::P256 | KeyKind::P384 => {
                let oid = if kind == KeyKind::P256 {
                    OID_P256
                } else {
                    OID_P384
                };
                public.push(Attribute::EcParams(oid.to_vec()));
                Mechanism::EccKeyPairGen
            }
            KeyKind::Rsa2048 => {
                public.push(Attribute::ModulusBits(Ulong::from(2048u64)));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeyKind::Ed25519 => {
                public.push(Attribute::EcParams(OID_ED25519.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
        };
        public.extend(common.iter().cloned());
        let mut private = private;
        private.extend(common);
        session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| explain(e, &format!("{}: generating a {kind:?} key", uri.describe())))?;
        drop(session);
        drop(guard);
        let mut named = uri.clone();
        named.id = Some(id);
        Self::open(&named)
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Vec<Pooled>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Empties the pool (the caller holds the generation's read lock): sessions of this
    /// generation are closed, older ones forgotten — their handles may name others now.
    fn drain(&self, generation: u64) {
        for p in self.pool().drain(..) {
            if p.generation == generation {
                drop(p);
            } else {
                std::mem::forget(p.session);
            }
        }
    }

    /// The token's slot in this generation of the module (found again after the module
    /// was initialised again).
    fn slot(&self, generation: u64) -> anyhow::Result<Slot> {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 != generation {
            *s = (generation, find_slot(&self.module.ctx, &self.uri)?);
        }
        Ok(s.1)
    }

    /// A pooled session of this generation, or a new one (the caller holds the
    /// generation's read lock).
    fn borrow(&self, generation: u64) -> anyhow::Result<Pooled> {
        loop {
            let Some(p) = self.pool().pop() else { break };
            if p.generation == generation {
                return Ok(p);
            }
            std::mem::forget(p.session);
        }
        let slot = self.slot(generation)?;
        let session = open_session(&self.module.ctx, slot, &self.uri, self.pin.as_ref(), false)?;
        let key = find_one(&session, &self.uri, ObjectClass::PRIVATE_KEY)?.with_context(|| {
            format!(
                "{}: the private key is gone from the token",
                self.uri.describe()
            )
        })?;
        Ok(Pooled {
            session,
            key,
            generation,
        })
    }

    /// One signing operation on a pooled session. When the token dropped the session or
    /// the key cannot be found, the pool is emptied and the operation tried again; when
    /// that fails too, the module is initialised again (the token went away and may be
    /// back) and it is tried a last time. A token still away is the caller's error.
    fn with_session(&self, mechanism: &Mechanism, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let fail = |e: anyhow::Error| CryptoError::Signing(format!("{e:#}"));
        let mut last = None;
        let mut seen = 0;
        for attempt in 0..3 {
            if attempt == 2 {
                // no read lock held here: this waits for every signature in flight
                if let Err(e) = self.module.reinitialize(seen) {
                    return Err(fail(
                        e.context(format!("{}: the token is away", self.uri.describe())),
                    ));
                }
            }
            let guard = self.module.read();
            let generation = *guard;
            seen = generation;
            if attempt == 1 {
                self.drain(generation);
            }
            let pooled = match self.borrow(generation) {
                Ok(p) => p,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match pooled.session.sign(mechanism, pooled.key, data) {
                Ok(sig) => {
                    self.pool().push(pooled);
                    return Ok(sig);
                }
                Err(e) if session_gone(&e) => {
                    drop(pooled);
                    last = Some(explain(e, &format!("{}: signing", self.uri.describe())));
                }
                Err(e) => {
                    self.pool().push(pooled);
                    return Err(fail(explain(
                        e,
                        &format!("{}: signing", self.uri.describe()),
                    )));
                }
            }
        }
        Err(fail(last.unwrap_or_else(|| {
            anyhow!("{}: the token dropped the session", self.uri.describe())
        })))
    }

    fn ecdsa(&self, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let raw = self.with_session(&Mechanism::Ecdsa, digest)?;
        der::ecdsa_signature(&raw).ok_or_else(|| {
            CryptoError::Signing(format!(
                "{}: the token returned a malformed ECDSA signature",
                self.uri.describe()
            ))
        })
    }
}

/// DigestInfo prefix for SHA-256 (RFC 8017 §9.2).
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self.alg {
            Alg::Ecdsa => self.ecdsa(&self.public.default_hash().digest(msg)),
            Alg::Rsa => self.with_session(&Mechanism::Sha256RsaPkcs, msg),
            Alg::Ed25519 => self.with_session(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                msg,
            ),
        }
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        match self.alg {
            Alg::Ecdsa if self.public.describe() == "ECDSA P-256" => self.ecdsa(digest),
            Alg::Rsa => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(digest);
                self.with_session(&Mechanism::RsaPkcs, &info)
            }
            _ => Err(CryptoError::Unsupported(format!(
                "{}: a {} key does not sign SHA-256 digests",
                self.uri.describe(),
                self.public.describe()
            ))),
        }
    }
}
