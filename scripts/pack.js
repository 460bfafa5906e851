#!/usr/bin/env node
// What `npm pack` and `npm publish` need around the tarball (prepare compiles dist/ in between):
//   node scripts/pack.js prepack    after build:native: the addon into prebuilds/, an empty dist/
//   node scripts/pack.js postpack   removes prebuilds/ again (the clone loads build/Release)
// prebuilds/<platform>-<arch>/ is where node-gyp-build (src/native.ts) finds the addon in the
// installed package. The name's tags tell it what the file needs: N-API (any Node with N-API 8)
// and glibc, so a musl system (Alpine) builds from source instead of loading a binary that fails.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const PREBUILDS = path.join(root, 'prebuilds');
const BUILT = path.join(root, 'build', 'Release', 'trellis.node');
const PREBUILT = path.join(PREBUILDS, `${process.platform}-${process.arch}`, 'trellis.napi.glibc.node');
const DIST = path.join(root, 'dist');

const step = process.argv[2];
if (step === 'prepack') {
  if (!fs.existsSync(BUILT)) throw new Error(`${BUILT} is missing: run npm run build:native first`);
  fs.rmSync(PREBUILDS, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(PREBUILT), { recursive: true });
  fs.copyFileSync(BUILT, PREBUILT);
  // tsc never deletes output whose source is gone: start dist/ empty so only today's src/ ships.
  fs.rmSync(DIST, { recursive: true, force: true });
} else if (step === 'postpack') {
  fs.rmSync(PREBUILDS, { recursive: true, force: true });
} else {
  console.error('usage: node scripts/pack.js prepack|postpack');
  process.exit(2);
}
