// ESLint (flat config) for the Node worker, client, tests and tools: `make lint` runs
// `npx eslint .` here. ESLint's recommended rules (likely bugs: undefined names, unused
// variables, unreachable code), for ES modules on Node.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/', 'spec/'] }, // spec/ is copied in by `npm pack` (scripts/pack-spec.js)
  js.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    rules: {
      // `catch {}` and `_`-named values are the code's way to say "deliberately unused".
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
];
