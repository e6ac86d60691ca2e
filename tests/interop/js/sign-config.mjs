#!/usr/bin/env node
// Signs an artifact with sigstore-js's signing-config path (`@sigstore/sign`'s
// bundleBuilderFromSigningConfig): the CA, transparency log (v1 or v2) and timestamp
// authority come from a signing_config.v0.2.json, as sigstore-js picks them.
//
//   node sign-config.mjs --signing-config FILE --identity-token JWT --artifact FILE
//        --bundle OUT.json [--attest PAYLOAD_TYPE]

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bundleBuilderFromSigningConfig } from '@sigstore/sign';
import { SigningConfig } from '@sigstore/protobuf-specs';
import { bundleToJSON } from '@sigstore/bundle';

const { values: v } = parseArgs({
  options: {
    'signing-config': { type: 'string' },
    'identity-token': { type: 'string' },
    artifact: { type: 'string' },
    bundle: { type: 'string' },
    attest: { type: 'string' },
  },
  strict: true,
});
for (const k of ['signing-config', 'identity-token', 'artifact', 'bundle']) {
  if (!v[k]) {
    console.error(`--${k} is required`);
    process.exit(2);
  }
}
try {
  const signingConfig = SigningConfig.fromJSON(JSON.parse(readFileSync(v['signing-config'], 'utf8')));
  const token = v['identity-token'];
  const builder = bundleBuilderFromSigningConfig({
    signingConfig,
    identityProvider: { getToken: async () => token },
    bundleType: v.attest ? 'dsseEnvelope' : 'messageSignature',
  });
  const artifact = { data: readFileSync(v.artifact) };
  if (v.attest) artifact.type = v.attest;
  const bundle = await builder.create(artifact);
  writeFileSync(v.bundle, JSON.stringify(bundleToJSON(bundle), null, 2));
  console.log('OK');
} catch (e) {
  console.error(`FAILED: ${e.name} ${e.code ?? ''} ${e.message}${e.cause ? ` | cause: ${e.cause.message ?? e.cause}` : ''}`);
  process.exit(1);
}
