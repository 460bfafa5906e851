'use strict';
/**
 * `node child-main.js SCRIPT.ts ARGS...`: runs a bench child script as the main module with tsx's
 * require hook on only while the script and its static imports load, then turns the hook off.
 * The script loads trellis from dist/ (see dist.ts), and trellis loads some of its modules at
 * first use, inside the timings: with the hook still on, tsx would read and lex each of them
 * first (about doubling a module's load time), which a user's process does not do. So a child
 * script must not require TypeScript after it has loaded.
 */
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const { register } = require('tsx/cjs/api');

/**
 * Resolves once tsx's ES-module lexer is loaded. tsx starts loading it (WebAssembly decoded from
 * base64, then compiled) in a promise when it is required; left alone, that ran at the script's
 * first await, inside its first timed call: ~14 ms of a cold reader's connect() CPU (a CPU
 * profile), which a user's process without tsx never pays. Best effort: a tsx laid out otherwise
 * is not waited for.
 */
async function tsxLexerLoaded() {
  const dist = path.join(path.dirname(require.resolve('tsx/package.json')), 'dist');
  const lexer = fs.readdirSync(dist).find((name) => /^lexer-[\w-]+\.cjs$/.test(name));
  if (lexer) await require(path.join(dist, lexer)).init;
}

void tsxLexerLoaded().then(() => {
  // The script becomes argv[1], as if node had been started on it.
  process.argv.splice(1, 1);
  const unregister = register();
  Module.runMain();
  unregister();
});
// Source maps go off with the hook, so a child's stack traces give positions in tsx's output, not
// in the .ts file. Turning them back on would make Node read and parse the .js.map of every module
// trellis loads at first use, inside the timings.
