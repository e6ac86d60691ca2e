//! The client against an in-memory repository: a good update, then each attack the TUF
//! specification names, refused.

use super::*;
use crate::repo::{self, RoleSpec};
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

#[derive(Default)]
struct Mem(Mutex<HashMap<String, Vec<u8>>>);

impl Mem {
    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), bytes);
    }
    fn remove(&self, path: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }
}

impl Fetch for &Mem {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        let got = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        match got {
            Some(b) if b.len() as u64 > max_len => Err(TufError::Fetch {
                what: path.into(),
                msg: "too long".into(),
            }),
            other => Ok(other),
        }
    }
}

struct Keys {
    root: Vec<FileSigner>,
    targets: FileSigner,
    online: FileSigner,
}

impl Keys {
    fn new() -> Self {
        Self {
            root: (0..3).map(|_| FileSigner::generate(Curve::P256)).collect(),
            targets: FileSigner::generate(Curve::P256),
            online: FileSigner::generate(Curve::P256),
        }
    }
}

fn root_env(
    version: u64,
    expires: i64,
    root_keys: &[&FileSigner],
    threshold: u32,
    k: &Keys,
    signers: &[&FileSigner],
) -> Envelope {
    let rk = RoleSpec {
        keys: root_keys.iter().map(|s| s.public_key()).collect(),
        threshold,
    };
    let tk = RoleSpec {
        keys: vec![k.targets.public_key()],
        threshold: 1,
    };
    let ok = RoleSpec {
        keys: vec![k.online.public_key()],
        threshold: 1,
    };
    let root = repo::root(
        version,
        expires,
        [
            (ROOT, &rk),
            (TARGETS, &tk),
            (SNAPSHOT, &ok),
            (TIMESTAMP, &ok),
        ],
    )
    .expect("root");
    let mut env = Envelope::new(&root).expect("env");
    for s in signers {
        env.sign(*s).expect("sign");
    }
    env
}

/// Publishes targets version `tv` with `files`, snapshot `sv`, timestamp `ts`.
fn publish(
    mem: &Mem,
    k: &Keys,
    tv: u64,
    sv: u64,
    ts: u64,
    files: &[(&str, &[u8])],
    ts_expires: i64,
) {
    let mut map = BTreeMap::new();
    for (name, bytes) in files {
        let tf = TargetFile::of(bytes, None);
        mem.put(
            &format!("targets/{}.{name}", tf.sha256().expect("sha")),
            bytes.to_vec(),
        );
        map.insert(name.to_string(), tf);
    }
    let mut t = Envelope::new(&repo::targets(tv, NOW + 30 * DAY, map)).expect("t");
    t.sign(&k.targets).expect("sign");
    let tb = t.to_bytes();
    mem.put(&format!("{tv}.targets.json"), tb.clone());
    let mut s = Envelope::new(&repo::snapshot(sv, NOW + 7 * DAY, tv, &tb)).expect("s");
    s.sign(&k.online).expect("sign");
    let sb = s.to_bytes();
    mem.put(&format!("{sv}.snapshot.json"), sb.clone());
    let mut t = Envelope::new(&repo::timestamp(ts, ts_expires, sv, &sb)).expect("ts");
    t.sign(&k.online).expect("sign");
    mem.put("timestamp.json", t.to_bytes());
}

fn setup() -> (Mem, Keys, Vec<u8>) {
    let k = Keys::new();
    let mem = Mem::default();
    let r: Vec<&FileSigner> = k.root.iter().collect();
    let root = root_env(1, NOW + 365 * DAY, &r, 2, &k, &r[..2]).to_bytes();
    mem.put("1.root.json", root.clone());
    publish(
        &mem,
        &k,
        1,
        1,
        1,
        &[("trusted_root.json", b"{\"a\":1}")],
        NOW + DAY,
    );
    (mem, k, root)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    // the in-memory fetcher never pends
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn good_update_and_download() {
    let (mem, _, root) = setup();
    let mut u = Updater::new(&mem, &root).expect("root");
    block_on(u.refresh(NOW)).expect("refresh");
    assert_eq!(
        block_on(u.download("trusted_root.json")).expect("download"),
        b"{\"a\":1}"
    );
    assert!(u.target("nope").is_none());
}

#[test]
fn tampered_target_is_refused() {
    let (mem, _, root) = setup();
    let mut u = Updater::new(&mem, &root).expect("root");
    block_on(u.refresh(NOW)).expect("refresh");
    let sha = u
        .target("trusted_root.json")
        .expect("t")
        .sha256()
        .expect("h")
        .to_string();
    mem.put(
        &format!("targets/{sha}.trusted_root.json"),
        b"{\"a\":2}".to_vec(),
    );
    assert!(matches!(
        block_on(u.download("trusted_root.json")),
        Err(TufError::Mismatch { .. })
    ));
}

#[test]
fn rollback_is_refused() {
    let (mem, k, root) = setup();
    let mut u = Updater::new(&mem, &root).expect("root");
    publish(
        &mem,
        &k,
        2,
        2,
        2,
        &[("trusted_root.json", b"{\"a\":2}")],
        NOW + DAY,
    );
    block_on(u.refresh(NOW)).expect("refresh to v2");
    // an attacker replays the version-1 timestamp
    publish(
        &mem,
        &k,
        1,
        1,
        1,
        &[("trusted_root.json", b"{\"a\":1}")],
        NOW + DAY,
    );
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::Rollback { .. })
    ));
}

#[test]
fn expired_timestamp_is_refused() {
    let (mem, k, root) = setup();
    publish(&mem, &k, 1, 1, 2, &[("trusted_root.json", b"x")], NOW - 1);
    let mut u = Updater::new(&mem, &root).expect("root");
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::Expired { ref role, .. }) if role == "timestamp"
    ));
}

#[test]
fn root_below_threshold_is_refused() {
    let (mem, k, _) = setup();
    let r: Vec<&FileSigner> = k.root.iter().collect();
    // a root signed by one of the two required keys, as initial root or as rotation
    let weak = root_env(1, NOW + DAY, &r, 2, &k, &r[..1]).to_bytes();
    assert!(matches!(
        Updater::new(&mem, &weak),
        Err(TufError::Threshold { .. })
    ));
    let (mem, k, root) = setup();
    let r: Vec<&FileSigner> = k.root.iter().collect();
    mem.put(
        "2.root.json",
        root_env(2, NOW + DAY, &r, 2, &k, &r[2..]).to_bytes(),
    );
    let mut u = Updater::new(&mem, &root).expect("root");
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::Threshold { .. })
    ));
}

#[test]
fn root_rotation_needs_old_and_new_thresholds() {
    let (mem, k, root) = setup();
    let new_keys: Vec<FileSigner> = (0..2).map(|_| FileSigner::generate(Curve::P256)).collect();
    let new: Vec<&FileSigner> = new_keys.iter().collect();
    let old: Vec<&FileSigner> = k.root.iter().collect();
    // signed by the new keys only: refused
    mem.put(
        "2.root.json",
        root_env(2, NOW + DAY, &new, 2, &k, &new).to_bytes(),
    );
    let mut u = Updater::new(&mem, &root).expect("root");
    assert!(block_on(u.refresh(NOW)).is_err());
    // signed by old threshold and new threshold: accepted, and 3.root.json is not there
    let signers = [old[0], old[1], new[0], new[1]];
    mem.put(
        "2.root.json",
        root_env(2, NOW + DAY, &new, 2, &k, &signers).to_bytes(),
    );
    let mut u = Updater::new(&mem, &root).expect("root");
    block_on(u.refresh(NOW)).expect("rotated");
    assert_eq!(u.trusted().root.1.version, 2);
    // a root claiming the wrong version
    mem.put(
        "3.root.json",
        root_env(5, NOW + DAY, &new, 2, &k, &new).to_bytes(),
    );
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::WrongVersion { .. })
    ));
    mem.remove("3.root.json");
}

#[test]
fn mix_and_match_is_refused() {
    let (mem, k, root) = setup();
    // targets v2 published, but the snapshot still names v1's hash: swap v2 bytes in
    publish(
        &mem,
        &k,
        2,
        2,
        2,
        &[("trusted_root.json", b"{\"b\":1}")],
        NOW + DAY,
    );
    // another, validly signed targets v2 with other contents
    let other = Mem::default();
    publish(
        &other,
        &k,
        2,
        2,
        2,
        &[("trusted_root.json", b"{\"c\":1}")],
        NOW + DAY,
    );
    let v1 = other.0.lock().unwrap_or_else(|e| e.into_inner())["2.targets.json"].clone();
    mem.put("2.targets.json", v1);
    let mut u = Updater::new(&mem, &root).expect("root");
    // refused by hash, or (when the DER signatures differ in length) by the pinned length
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::Mismatch { .. } | TufError::Fetch { .. })
    ));
}

#[test]
fn signatures_by_the_wrong_role_are_refused() {
    let (mem, k, root) = setup();
    // a timestamp signed by the targets key
    let mut t = Envelope::new(&repo::timestamp(9, NOW + DAY, 1, b"x")).expect("t");
    t.sign(&k.targets).expect("sign");
    mem.put("timestamp.json", t.to_bytes());
    let mut u = Updater::new(&mem, &root).expect("root");
    assert!(matches!(
        block_on(u.refresh(NOW)),
        Err(TufError::Threshold { .. })
    ));
}

#[test]
fn thresholds_that_cannot_be_met_are_refused() {
    let k = Keys::new();
    let rk = RoleSpec {
        keys: vec![k.root[0].public_key(), k.root[0].public_key()],
        threshold: 2,
    };
    let one = RoleSpec {
        keys: vec![k.online.public_key()],
        threshold: 1,
    };
    assert!(
        repo::root(
            1,
            NOW,
            [
                (ROOT, &rk),
                (TARGETS, &one),
                (SNAPSHOT, &one),
                (TIMESTAMP, &one)
            ]
        )
        .is_err()
    );
    let zero = RoleSpec {
        keys: vec![k.online.public_key()],
        threshold: 0,
    };
    assert!(
        repo::root(
            1,
            NOW,
            [
                (ROOT, &zero),
                (TARGETS, &one),
                (SNAPSHOT, &one),
                (TIMESTAMP, &one)
            ]
        )
        .is_err()
    );
}
