//! Every fuzz target over its committed corpus (`fuzz/corpus/<target>`), seeds made here
//! (genuine entries, tokens, metadata, timestamps: what the parsers should accept) and
//! real bundles from the shared conformance assets, each with deterministic mutations:
//! bits flipped, bytes replaced with boundary values, inserted, deleted, duplicated,
//! truncated, and spliced with another seed. Any panic fails the test; the input is kept
//! in `target/fuzz-crashes/<target>/` for `cargo fuzz run <target> FILE`.
//!
//! `SIGSTACK_WRITE_CORPUS=1` also writes the made seeds into `fuzz/corpus` (how the
//! committed corpus started).

mod seeds;

use std::path::PathBuf;

/// Mutations tried per seed, and at most per target.
const PER_SEED: usize = 120;
const PER_TARGET: usize = 6_000;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const BOUNDARY: [u8; 10] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'0', 0x30];

fn mutate(seed: &[u8], other: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + r.below(4);
    for _ in 0..rounds {
        let len = b.len();
        match r.below(8) {
            0 if len > 0 => {
                let i = r.below(len);
                b[i] ^= 1 << r.below(8);
            }
            1 if len > 0 => {
                let i = r.below(len);
                b[i] = BOUNDARY[r.below(BOUNDARY.len())];
            }
            2 => {
                let i = r.below(len + 1);
                b.insert(i, (r.next() & 0xff) as u8);
            }
            3 if len > 0 => {
                let i = r.below(len);
                let n = 1 + r.below((len - i).min(64));
                b.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = r.below(len);
                let n = 1 + r.below((len - i).min(256));
                let piece = b[i..i + n].to_vec();
                let at = r.below(b.len() + 1);
                b.splice(at..at, piece);
            }
            5 if len > 0 => b.truncate(r.below(len)),
            6 if !other.is_empty() => {
                let cut = r.below(len + 1);
                let from = r.below(other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                // a DER length or JSON number grown: a byte set high
                let i = r.below(len);
                b[i] = b[i].wrapping_add(0x80);
            }
            _ => b.push(0),
        }
    }
    b
}

fn committed(target: &str) -> Vec<Vec<u8>> {
    let dir = workspace().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn keep_crash(target: &str, input: &[u8]) -> PathBuf {
    let dir = workspace().join("target/fuzz-crashes").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(input)[..8]);
    let path = dir.join(name);
    let _ = std::fs::write(&path, input);
    path
}

fn write_corpus(target: &str, made: &[Vec<u8>]) {
    let dir = workspace().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (i, s) in made.iter().enumerate() {
        std::fs::write(dir.join(format!("made-{i:02}")), s).expect("write seed");
    }
}

fn run_target(name: &str, f: fn(&[u8])) -> usize {
    let made = seeds::made(name);
    if std::env::var_os("SIGSTACK_WRITE_CORPUS").is_some() {
        write_corpus(name, &made);
    }
    let mut all = committed(name);
    assert!(
        !all.is_empty() || made.is_empty(),
        "fuzz/corpus/{name} holds no seeds: the committed corpus is missing"
    );
    all.extend(made);
    all.extend(seeds::shared(name));
    assert!(all.len() >= 2, "{name}: too few seeds");
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let mut runs = 0;
    let mut inputs: Vec<Vec<u8>> = all.clone();
    'outer: for (i, seed) in all.iter().enumerate() {
        let other = &all[(i + 1) % all.len()];
        for _ in 0..PER_SEED {
            if inputs.len() >= PER_TARGET {
                break 'outer;
            }
            inputs.push(mutate(seed, other, &mut r));
        }
    }
    for input in &inputs {
        let result = std::panic::catch_unwind(|| f(input));
        if result.is_err() {
            let kept = keep_crash(name, input);
            panic!("{name} panicked on an input kept in {}", kept.display());
        }
        runs += 1;
    }
    runs
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let mut total = 0;
    for (name, f) in sigstack_fuzzing::TARGETS {
        let n = run_target(name, *f);
        println!("{name}: {n} inputs");
        total += n;
    }
    assert!(total > sigstack_fuzzing::TARGETS.len() * 100);
}

/// The made seeds are what they claim: accepted by the parser they seed (so mutations
/// start from inputs that reach deep), checked here for the entries and the tokens.
#[test]
fn made_seeds_are_accepted() {
    for e in seeds::made("proposed_entry") {
        let entry: sigstack_types::rekor::ProposedEntry =
            serde_json::from_slice(&e).expect("entry json");
        sigstack_log::kinds::canonicalize(&entry)
            .unwrap_or_else(|err| panic!("{} {}: {err}", entry.kind, entry.api_version));
    }
    // the token verifies, so the jwt target reaches its jsonwebtoken comparison
    use sigstack_ca::token::{Expectations, Jwks, UnverifiedToken, verify};
    for seed in seeds::made("jwt") {
        let at = seed
            .iter()
            .position(|b| *b == b'\n')
            .expect("token, then keys");
        let token = std::str::from_utf8(&seed[..at]).expect("utf-8");
        let t = UnverifiedToken::parse(token).expect("token");
        let k = Jwks::from_json(&seed[at + 1..]).expect("jwks");
        let exp = Expectations {
            issuer: "https://issuer.example".into(),
            audience: "sigstore".into(),
            now: 1_700_000_000,
            leeway: 60,
            allowed_algs: vec!["ES256".into()],
        };
        verify(&t, &k, &exp).expect("the made token verifies");
        sigstack_fuzzing::jwt(&seed);
    }
}
