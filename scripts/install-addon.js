#!/usr/bin/env node
// trellis's npm install script. npm may run it in two places, which need different builds:
// - A clone of the repository (it has src/): build the addon from source with cmake-js, as the
//   project always has (its devDependencies are installed there).
// - The installed package (src/ is not packed): it carries a prebuilt addon in prebuilds/, so
//   nothing is built when one loads on this machine; otherwise node-gyp-build builds binding.gyp
//   with the node-gyp that npm bundles. No cmake-js or TypeScript is needed on a user's machine,
//   and the package works as well when npm skips this script (--ignore-scripts, a denied
//   allowScripts entry) wherever a prebuild fits.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  process.exit(result.status ?? 1);
}

if (fs.existsSync(path.join(root, 'src'))) {
  // npm_execpath is the npm that runs this script; `npm` on PATH when run by hand.
  const npm = process.env.npm_execpath;
  if (npm) run(process.execPath, [npm, 'run', 'build:native']);
  else run('npm', ['run', 'build:native']);
} else {
  run(process.execPath, [require.resolve('node-gyp-build/bin.js')]);
}
