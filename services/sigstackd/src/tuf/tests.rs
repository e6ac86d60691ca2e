//! Online re-signing: when snapshot and timestamp are due, and their versions.

use super::*;
use sigstack_crypto::Curve;

fn file(seq: i64, path: &str, role: &str, version: i64, env: &Envelope) -> TufFile {
    TufFile {
        seq,
        path: path.into(),
        role: role.into(),
        version,
        body: env.to_bytes(),
    }
}

/// A repository with root and targets, whose online roles use `online`.
fn repo_with(online: &FileSigner, offline: &FileSigner, now: i64) -> Repo {
    let (off, on) = (
        repo::RoleSpec::single(offline.public_key()),
        repo::RoleSpec::single(online.public_key()),
    );
    let root = repo::root(
        1,
        now + 86_400,
        [
            (ROOT, &off),
            (TARGETS, &off),
            (SNAPSHOT, &on),
            (TIMESTAMP, &on),
        ],
    )
    .expect("root");
    let mut r = Envelope::new(&root).expect("env");
    r.sign(offline).expect("sign");
    let mut t = Envelope::new(&repo::targets(1, now + 86_400, Default::default())).expect("t");
    t.sign(offline).expect("sign");
    let mut repo = Repo::default();
    repo.apply(vec![
        file(1, "1.root.json", ROOT, 1, &r),
        file(2, "1.targets.json", TARGETS, 1, &t),
    ])
    .expect("apply");
    repo
}

#[test]
fn online_roles_are_resigned_when_due_and_only_then() {
    let (online, offline) = (
        FileSigner::generate(Curve::P256),
        FileSigner::generate(Curve::P256),
    );
    let now = 1_790_000_000;
    let mut repo = repo_with(&online, &offline, now);
    // nothing signed yet: versions from the clock
    let files = online_update(&repo, &online, (100, 1000), now, false)
        .expect("update")
        .expect("due");
    assert_eq!(
        files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        [
            format!("{now}.snapshot.json"),
            format!("{now}.timestamp.json")
        ]
    );
    let seq = files.into_iter().zip(3..).map(|(mut f, s)| {
        f.seq = s;
        f
    });
    repo.apply(seq.collect()).expect("apply");
    assert!(
        online_update(&repo, &online, (100, 1000), now + 10, false)
            .expect("update")
            .is_none(),
        "fresh"
    );
    // past half the timestamp's life: only a new timestamp
    let files = online_update(&repo, &online, (100, 1000), now + 60, false)
        .expect("update")
        .expect("due");
    assert_eq!(
        files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        [format!("{}.timestamp.json", now + 60)]
    );
    // at start (force): both, though fresh; a clock behind the versions still counts up
    let files = online_update(&repo, &online, (100, 1000), now - 5000, true)
        .expect("update")
        .expect("forced");
    assert_eq!(
        files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        [
            format!("{}.snapshot.json", now + 1),
            format!("{}.timestamp.json", now + 1)
        ]
    );
    // past half the snapshot's life: both
    let files = online_update(&repo, &online, (100, 1000), now + 600, false)
        .expect("update")
        .expect("due");
    assert_eq!(files.len(), 2);
    // a root naming another online key: both again, even when fresh
    let other = FileSigner::generate(Curve::P256);
    let rotated = repo_with(&other, &offline, now);
    let mut next = repo.clone();
    next.root = rotated.root;
    assert_eq!(
        online_update(&next, &other, (100, 1000), now + 10, false)
            .expect("update")
            .expect("due")
            .len(),
        2
    );
}
