// Lint rules. Model code (everything under src/ except the live host, the CLI and
// the web dashboard) must stay deterministic: time comes from the scheduler's
// virtual clock and randomness from the run's seeded PRNG.
import tseslint from 'typescript-eslint';

const nondeterminism = [
  { object: 'Math', property: 'random', message: 'Use the run PRNG (k.rng) — model code must be deterministic.' },
  { object: 'Date', property: 'now', message: 'Use the virtual clock (k.clock.now()) — model code must be deterministic.' },
  { object: 'performance', property: 'now', message: 'Use the virtual clock — model code must be deterministic.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web/dist/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/live/**', 'src/cli/**', 'src/web/**'],
    rules: {
      'no-restricted-properties': ['error', ...nondeterminism],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use the virtual clock (msleep / timers of the kernel runtime).' },
        { name: 'setInterval', message: 'Use the virtual clock (delayed work).' },
        { name: 'setImmediate', message: 'Model code never schedules real work.' },
        { name: 'WeakRef', message: 'GC-dependent behaviour is nondeterministic.' },
        { name: 'FinalizationRegistry', message: 'GC-dependent behaviour is nondeterministic.' },
        { name: 'WeakMap', message: 'World snapshots cannot see WeakMap entries: use SideTable (src/kernel/sidetable.ts).' },
        { name: 'WeakSet', message: 'World snapshots cannot see WeakSet entries: use SideTable or a field.' },
      ],
      // World snapshots (src/kernel/snapshot.ts) restore objects through their own
      // properties; #private fields are invisible to them.
      'no-restricted-syntax': ['error', { selector: 'PrivateIdentifier', message: 'Use a TypeScript `private` field: world snapshots cannot see #private state.' }],
    },
  },
);
