#!/usr/bin/env node
// Signs an artifact with the upstream sigstore-js client (`sigstore` package) against
// a given CA and Rekor v1 log, and writes the bundle.
//
//   node sign-bundle.mjs --fulcio-url URL --rekor-url URL --identity-token JWT
//        --artifact FILE --bundle OUT.json [--attest PAYLOAD_TYPE]
//
// With --attest, the artifact is signed as a DSSE envelope of that payload type
// (Rekor `dsse` entry); otherwise as a message signature (hashedrekord).

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { attest, sign } from 'sigstore';

const { values: v } = parseArgs({
  options: {
    'fulcio-url': { type: 'string' },
    'rekor-url': { type: 'string' },
    'identity-token': { type: 'string' },
    artifact: { type: 'string' },
    bundle: { type: 'string' },
    attest: { type: 'string' },
  },
  strict: true,
});
for (const k of ['fulcio-url', 'rekor-url', 'identity-token', 'artifact', 'bundle']) {
  if (!v[k]) {
    console.error(`--${k} is required`);
    process.exit(2);
  }
}
const opts = {
  fulcioURL: v['fulcio-url'],
  rekorURL: v['rekor-url'],
  identityToken: v['identity-token'],
  retry: 0,
  timeout: 10000,
};
try {
  const payload = readFileSync(v.artifact);
  const bundle = v.attest ? await attest(payload, v.attest, opts) : await sign(payload, opts);
  writeFileSync(v.bundle, JSON.stringify(bundle, null, 2));
  console.log('OK');
} catch (e) {
  console.error(`FAILED: ${e.name} ${e.code ?? ''} ${e.message}${e.cause ? ` | cause: ${e.cause.message ?? e.cause}` : ''}`);
  process.exit(1);
}
