#!/usr/bin/env node
// Verifies a bundle the way a sigstore-js user does: trust material from a TUF
// repository (the `sigstore` package's `verify` with tufMirrorURL/tufRootPath), not
// from a local trusted_root.json.
//
//   node verify-tuf.mjs --tuf-mirror-url URL --tuf-root ROOT.json --tuf-cache DIR
//        --bundle B.json --artifact FILE
//        --certificate-identity EMAIL --certificate-oidc-issuer ISSUER
//
// Prints "OK" and exits 0 when the bundle verifies; otherwise prints the error and
// exits 1.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { verify } from 'sigstore';

const { values: v } = parseArgs({
  options: {
    'tuf-mirror-url': { type: 'string' },
    'tuf-root': { type: 'string' },
    'tuf-cache': { type: 'string' },
    bundle: { type: 'string' },
    artifact: { type: 'string' },
    'certificate-identity': { type: 'string' },
    'certificate-oidc-issuer': { type: 'string' },
  },
  strict: true,
});
for (const k of ['tuf-mirror-url', 'tuf-root', 'tuf-cache', 'bundle', 'artifact', 'certificate-identity', 'certificate-oidc-issuer']) {
  if (!v[k]) {
    console.error(`--${k} is required`);
    process.exit(2);
  }
}
try {
  const bundle = JSON.parse(readFileSync(v.bundle, 'utf8'));
  const identity = v['certificate-identity'];
  await verify(bundle, readFileSync(v.artifact), {
    tufMirrorURL: v['tuf-mirror-url'],
    tufRootPath: v['tuf-root'],
    tufCachePath: v['tuf-cache'],
    certificateIssuer: v['certificate-oidc-issuer'],
    ...(identity.includes('@') ? { certificateIdentityEmail: identity } : { certificateIdentityURI: identity }),
    retry: 0,
    timeout: 10000,
  });
  console.log('OK');
} catch (e) {
  console.error(`verification failed: ${e?.stack ?? e}`);
  process.exit(1);
}
