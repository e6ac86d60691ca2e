#!/usr/bin/env node
// Outside verifier for Sigstore bundles, built on the upstream sigstore-js
// libraries (@sigstore/verify, @sigstore/bundle, @sigstore/protobuf-specs,
// @sigstore/core). Trust material comes from one trusted_root.json only: no
// TUF, no network.
//
//   node verify-bundle.mjs --trusted-root TR.json --bundle B.json
//        (--artifact FILE | --digest sha256:HEX)
//        (--key KEY.pem | --certificate-identity ID --certificate-oidc-issuer ISSUER)
//
// Prints "OK" and exits 0 when the bundle verifies; otherwise prints the error
// to stderr and exits 1 (usage errors and malformed input included).
//
// All cryptographic verification (certificate chain, SCTs, RFC 3161
// timestamps, SET, checkpoint signature, Merkle inclusion proof, tlog body
// consistency, signature, identity policy) is done by @sigstore/verify's
// Verifier. The few checks this file adds are marked "harness check" below.
// They bind the inputs given on the command line to the bundle where
// sigstore-js itself does not.

import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { p256, p384 } from '@noble/curves/nist.js';
import { bundleFromJSON, ValidationError } from '@sigstore/bundle';
import { HashAlgorithm, TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';

const USAGE = `usage: node verify-bundle.mjs --trusted-root TR.json --bundle B.json
       (--artifact FILE | --digest sha256:HEX)
       (--key KEY.pem | --certificate-identity ID --certificate-oidc-issuer ISSUER)`;

const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const HASH_NAMES = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: 'sha256',
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
  [HashAlgorithm.SHA3_256]: 'sha3-256',
  [HashAlgorithm.SHA3_384]: 'sha3-384',
};

class UsageError extends Error {}

function parseCli(argv) {
  const options = {
    'trusted-root': { type: 'string' },
    bundle: { type: 'string' },
    artifact: { type: 'string' },
    digest: { type: 'string' },
    key: { type: 'string' },
    'certificate-identity': { type: 'string' },
    'certificate-oidc-issuer': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    throw new UsageError(e.message);
  }
  // parseArgs silently keeps the last of repeated options; refuse them instead.
  const seen = new Set();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new UsageError(`option --${t.name} given more than once`);
    seen.add(t.name);
  }
  const v = parsed.values;
  if (v.help) return { help: true };
  for (const [name, value] of Object.entries(v)) {
    if (typeof value === 'string' && value.length === 0) {
      throw new UsageError(`option --${name} must not be empty`);
    }
  }
  if (!v['trusted-root']) throw new UsageError('--trusted-root is required');
  if (!v.bundle) throw new UsageError('--bundle is required');
  if ((v.artifact === undefined) === (v.digest === undefined)) {
    throw new UsageError('exactly one of --artifact or --digest is required');
  }
  const hasIdentity = v['certificate-identity'] !== undefined;
  const hasIssuer = v['certificate-oidc-issuer'] !== undefined;
  if (v.key !== undefined) {
    if (hasIdentity || hasIssuer) {
      throw new UsageError('--key cannot be combined with --certificate-identity/--certificate-oidc-issuer');
    }
  } else if (!hasIdentity || !hasIssuer) {
    throw new UsageError('either --key, or both --certificate-identity and --certificate-oidc-issuer, are required');
  }
  let digest;
  if (v.digest !== undefined) {
    const m = /^sha256:([0-9a-fA-F]{64})$/.exec(v.digest);
    if (!m) throw new UsageError('--digest must be sha256:<64 hex digits>');
    digest = Buffer.from(m[1], 'hex');
  }
  return {
    trustedRootPath: v['trusted-root'],
    bundlePath: v.bundle,
    artifactPath: v.artifact,
    digest,
    keyPath: v.key,
    identity: v['certificate-identity'],
    issuer: v['certificate-oidc-issuer'],
  };
}

function readJSON(path, what) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${path} is not valid JSON: ${e.message}`);
  }
}

function isPlainObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

// Harness check: the trusted root must have the shape the spec requires.
// TrustedRoot.fromJSON is lenient and toTrustMaterial treats a missing
// validFor.start as "since the beginning of time"; a TimeRange's start is
// required, so a root without one is rejected here (conformance case
// trust-root-tlog-missing-validity-start_fail).
function loadTrustedRoot(path) {
  const json = readJSON(path, 'trusted root');
  if (!isPlainObject(json)) throw new Error('trusted root is not a JSON object');
  const problems = [];
  const requireStart = (validFor, where) => {
    if (!isPlainObject(validFor) || validFor.start === undefined || validFor.start === null) {
      problems.push(`${where}.validFor.start is missing`);
    } else if (Number.isNaN(new Date(validFor.start).getTime())) {
      problems.push(`${where}.validFor.start is not a valid timestamp`);
    }
    if (isPlainObject(validFor) && validFor.end != null && Number.isNaN(new Date(validFor.end).getTime())) {
      problems.push(`${where}.validFor.end is not a valid timestamp`);
    }
  };
  for (const field of ['tlogs', 'ctlogs']) {
    const list = json[field] ?? [];
    if (!Array.isArray(list)) {
      problems.push(`${field} is not an array`);
      continue;
    }
    list.forEach((log, i) => {
      if (!isPlainObject(log) || !isPlainObject(log.publicKey)) {
        problems.push(`${field}[${i}].publicKey is missing`);
      } else {
        requireStart(log.publicKey.validFor, `${field}[${i}].publicKey`);
      }
      if (!isPlainObject(log) || !isPlainObject(log.logId) || !log.logId.keyId) {
        problems.push(`${field}[${i}].logId.keyId is missing`);
      }
    });
  }
  for (const field of ['certificateAuthorities', 'timestampAuthorities']) {
    const list = json[field] ?? [];
    if (!Array.isArray(list)) {
      problems.push(`${field} is not an array`);
      continue;
    }
    list.forEach((ca, i) => {
      if (!isPlainObject(ca) || !isPlainObject(ca.certChain) || !Array.isArray(ca.certChain.certificates) || ca.certChain.certificates.length === 0) {
        problems.push(`${field}[${i}].certChain.certificates is missing or empty`);
      }
      requireStart(isPlainObject(ca) ? ca.validFor : undefined, `${field}[${i}]`);
    });
  }
  if (!Array.isArray(json.tlogs) || json.tlogs.length === 0) problems.push('tlogs is empty');
  if (problems.length > 0) throw new Error(`malformed trusted root: ${problems.join('; ')}`);
  return TrustedRoot.fromJSON(json);
}

function loadPublicKey(path) {
  let pem;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read key ${path}: ${e.message}`);
  }
  try {
    return createPublicKey(pem);
  } catch (e) {
    throw new Error(`cannot parse public key ${path}: ${e.message}`);
  }
}

// Signature content for --digest mode on a messageSignature bundle. Node's
// crypto cannot verify a signature given only the digest of the signed data,
// so (as in sigstore-js's own conformance CLI) ECDSA is verified on the digest
// with a separate library (@noble/curves, prehash off, high-S allowed as
// OpenSSL/Go do). Only ECDSA P-256 and P-384 keys are supported in this mode.
class MessageDigestSignatureContent {
  constructor(messageSignature, digest) {
    this.signature = messageSignature.signature;
    this.digest = digest;
  }

  compareSignature(signature) {
    return bufferEqual(signature, this.signature);
  }

  compareDigest(digest) {
    return bufferEqual(digest, this.digest);
  }

  compareSignedDigest(digest) {
    return this.compareDigest(digest);
  }

  verifySignature(key) {
    const curve = { prime256v1: p256, secp384r1: p384 }[key.asymmetricKeyDetails?.namedCurve];
    if (key.asymmetricKeyType !== 'ec' || !curve) {
      throw new Error(
        `--digest mode supports only ECDSA P-256/P-384 signing keys, not ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''}; use --artifact`.trimEnd()
      );
    }
    const jwk = key.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    try {
      return curve.verify(this.signature, this.digest, point, { prehash: false, lowS: false, format: 'der' });
    } catch {
      return false;
    }
  }
}

function bufferEqual(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

// Harness check: for a DSSE bundle, the artifact (or the given digest) must be
// a subject of the in-toto statement. sigstore-js verifies the envelope
// signature and the log entry but never looks at the artifact for DSSE.
// `digests` maps in-toto digest names (sha256, sha384, sha512) to the
// artifact's digests; a subject matches if any digest it lists is among them.
function checkInTotoSubject(envelope, digests) {
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new Error(`cannot bind the artifact to a DSSE envelope of payloadType ${JSON.stringify(envelope.payloadType)}; only ${IN_TOTO_PAYLOAD_TYPE} is supported`);
  }
  let statement;
  try {
    statement = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
  } catch (e) {
    throw new Error(`DSSE payload is not valid JSON: ${e.message}`);
  }
  const subjects = isPlainObject(statement) && Array.isArray(statement.subject) ? statement.subject : [];
  const found = subjects.some(
    (s) =>
      isPlainObject(s) &&
      isPlainObject(s.digest) &&
      Object.entries(digests).some(
        ([alg, d]) => typeof s.digest[alg] === 'string' && s.digest[alg].toLowerCase() === d.toString('hex')
      )
  );
  if (!found) {
    throw new Error(`artifact sha256:${digests.sha256.toString('hex')} is not a subject of the in-toto statement`);
  }
}

function verify(opts) {
  const trustedRoot = loadTrustedRoot(opts.trustedRootPath);

  const bundleJSON = readJSON(opts.bundlePath, 'bundle');
  if (!isPlainObject(bundleJSON)) throw new Error('bundle is not a JSON object');
  let bundle;
  try {
    bundle = bundleFromJSON(bundleJSON);
  } catch (e) {
    if (e instanceof ValidationError && Array.isArray(e.fields)) {
      throw new Error(`${e.message}: ${e.fields.join(', ')}`);
    }
    throw e;
  }

  const keyCase = bundle.verificationMaterial.content.$case;
  let keyFinder;
  if (opts.keyPath !== undefined) {
    // Harness check: with --key, the bundle must be a public-key bundle.
    // Otherwise the key would never be consulted and any certificate bundle
    // from a trusted CA would pass with no identity policy at all.
    if (keyCase !== 'publicKey') {
      throw new Error(`--key was given but the bundle's verification material is ${keyCase}, not publicKey`);
    }
    const publicKey = loadPublicKey(opts.keyPath);
    // The hint in the bundle is informational; the caller names the key.
    keyFinder = () => ({ publicKey, validFor: () => true });
  } else if (keyCase === 'publicKey') {
    throw new Error('bundle is signed with a public key; verify it with --key');
  }

  const trustMaterial = toTrustMaterial(trustedRoot, keyFinder);

  // Bind the artifact (or --digest) to the bundle and build the signed entity.
  let signedEntity;
  const content = bundle.content;
  if (opts.artifactPath !== undefined) {
    let artifact;
    try {
      artifact = readFileSync(opts.artifactPath);
    } catch (e) {
      throw new Error(`cannot read artifact ${opts.artifactPath}: ${e.message}`);
    }
    signedEntity = toSignedEntity(bundle, artifact);
    if (content.$case === 'messageSignature') {
      // Harness check: the bundle's messageDigest (which sigstore-js compares
      // with the log entry) must be the artifact's digest.
      const md = content.messageSignature.messageDigest;
      const alg = HASH_NAMES[md.algorithm];
      if (!alg) throw new Error(`unsupported messageDigest algorithm ${md.algorithm}`);
      if (!bufferEqual(createHash(alg).update(artifact).digest(), md.digest)) {
        throw new Error("bundle messageDigest does not match the artifact's digest");
      }
    } else {
      const digests = {};
      for (const alg of ['sha256', 'sha384', 'sha512']) digests[alg] = createHash(alg).update(artifact).digest();
      checkInTotoSubject(content.dsseEnvelope, digests);
    }
  } else {
    signedEntity = toSignedEntity(bundle);
    if (content.$case === 'messageSignature') {
      const md = content.messageSignature.messageDigest;
      if (HASH_NAMES[md.algorithm] !== 'sha256') {
        throw new Error(`bundle messageDigest uses ${HashAlgorithm[md.algorithm] ?? md.algorithm}, not SHA2_256; use --artifact`);
      }
      if (!bufferEqual(md.digest, opts.digest)) {
        throw new Error('bundle messageDigest does not match --digest');
      }
      signedEntity.signature = new MessageDigestSignatureContent(content.messageSignature, opts.digest);
    } else {
      checkInTotoSubject(content.dsseEnvelope, { sha256: opts.digest });
    }
  }

  const verifier = new Verifier(trustMaterial, {
    tlogThreshold: 1,
    ctlogThreshold: keyCase === 'publicKey' ? 0 : 1,
    timestampThreshold: 1,
  });

  let policy;
  if (opts.keyPath === undefined) {
    // sigstore-js treats a string SAN policy as an unanchored regular
    // expression; an anchored, escaped one makes it an exact match.
    const escaped = opts.identity.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    policy = {
      subjectAlternativeName: new RegExp(`^${escaped}$`),
      extensions: { issuer: opts.issuer },
    };
  }

  verifier.verify(signedEntity, policy);
  checkProofMatchesCheckpoint(bundle);
}

// Harness check: sigstore-js verifies the Merkle path against the size and root
// hash in the signed checkpoint and ignores inclusionProof.treeSize and
// inclusionProof.rootHash. A bundle whose own fields disagree with its
// checkpoint is inconsistent (sigstore-python rejects it), so reject it too.
function checkProofMatchesCheckpoint(bundle) {
  bundle.verificationMaterial.tlogEntries.forEach((entry, i) => {
    const proof = entry.inclusionProof;
    if (!proof || !proof.checkpoint) return;
    const envelope = proof.checkpoint.envelope;
    const sep = envelope.indexOf('\n\n');
    const lines = (sep >= 0 ? envelope.slice(0, sep) : envelope).split('\n');
    const size = lines[1];
    const root = lines[2] === undefined ? undefined : Buffer.from(lines[2], 'base64');
    if (size === undefined || !/^[0-9]+$/.test(size) || BigInt(size) !== BigInt(proof.treeSize)) {
      throw new Error(`tlogEntries[${i}]: inclusionProof.treeSize ${proof.treeSize} does not match checkpoint size ${size}`);
    }
    if (!root || !bufferEqual(root, proof.rootHash)) {
      throw new Error(`tlogEntries[${i}]: inclusionProof.rootHash does not match the checkpoint root hash`);
    }
  });
}

function describe(err) {
  const parts = [];
  let e = err;
  for (let depth = 0; e && depth < 5; depth++, e = e.cause) {
    if (e instanceof Error) {
      const code = e.code ? ` [${e.code}]` : '';
      parts.push(`${e.name}${code}: ${e.message}`);
    } else {
      parts.push(String(e));
    }
  }
  return parts.join(' <- caused by: ');
}

function main() {
  let opts;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`error: ${e.message}\n${USAGE}\n`);
    return 1;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    verify(opts);
  } catch (e) {
    process.stderr.write(`FAIL: ${describe(e)}\n`);
    return 1;
  }
  process.stdout.write('OK\n');
  return 0;
}

process.exitCode = main();
