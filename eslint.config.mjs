// ESLint: eslint's and typescript-eslint's recommended rules, without type information (the
// type-aware set takes twice as long and mostly objects to the deliberate `any` of get()).
// Layout is prettier's (.prettierrc.json): eslint-config-prettier turns off the rules it owns.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'build*/', 'bench/results/']),
  {
    files: ['**/*.{ts,js,mjs}', 'bin/trellisd'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: { globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    // The dashboard's script runs in the browser, with uPlot loaded beside it.
    files: ['dashboard/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, uPlot: 'readonly' } },
  },
  {
    // Plain JavaScript here is CommonJS run by node as is, so require() is how it imports.
    files: ['**/*.js', 'bin/trellisd'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
  {
    // Prettier keeps lines to 120 but cannot break a comment, string, template or regexp; this
    // catches the comments. (max-len is deprecated in eslint core but kept there until eslint 11.)
    rules: {
      // A rest sibling leaves out what it names on purpose; a leading _ marks an unused parameter.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
);
