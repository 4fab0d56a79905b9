// The live verbs' option parser (parseArgs): forms, errors, and a property against a
// reference reading of the same argument list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseArgs, UsageError } from '../../src/live/client.js';
import { main } from '../../src/cli/main.js';

const SPEC = { values: ['--type', '--mdev'], flags: ['-w', '--follow'], positional: [0, 2] as const };

test('parseArgs: --name value, --name=value, flags, --json and --root everywhere, -- ends the options', () => {
  const p = parseArgs('x', ['--type=a,b', 'pos1', '--root', '/r', '-w', '--json', '--', '--not-an-option'], SPEC);
  assert.deepEqual([...p.values], [['--type', 'a,b'], ['--root', '/r']]);
  assert.deepEqual([...p.flags], ['-w', '--json']);
  assert.deepEqual(p.positional, ['pos1', '--not-an-option']);
  // A lone '-' is a positional (stdin, by convention); the last value of an option wins.
  assert.deepEqual(parseArgs('x', ['-', '--mdev', 'a', '--mdev', 'b'], SPEC).positional, ['-']);
  assert.equal(parseArgs('x', ['--mdev', 'a', '--mdev=b'], SPEC).values.get('--mdev'), 'b');
});

test('parseArgs: each wrong form is a UsageError naming the verb and the argument', () => {
  for (const [args, msg] of [
    [['--type'], 'apsim x: --type needs a value'],
    [['--bogus'], "apsim x: unknown option '--bogus'"],
    [['--json=1'], "apsim x: unknown option '--json=1'"],
    [['-w=on'], "apsim x: unknown option '-w=on'"],
    [['a', 'b', 'c'], "apsim x: unexpected argument 'c'"],
  ] as const) {
    assert.throws(() => parseArgs('x', args, SPEC), (e: unknown) => e instanceof UsageError && e.message === msg, args.join(' '));
  }
  assert.throws(() => parseArgs('x', [], { positional: [1, 1] }), (e: unknown) => e instanceof UsageError && e.message === 'apsim x: missing argument');
});

test('property: parseArgs agrees with a reference reading of any argument list over its options', () => {
  const token = fc.oneof(
    fc.constantFrom('--type', '--mdev', '--root', '-w', '--follow', '--json', '--', '--bogus', '-'),
    fc.constantFrom('--type=v', '--mdev=', '--json=x'),
    fc.stringMatching(/^[a-z0-9,]{1,4}$/),
  );
  fc.assert(
    fc.property(fc.array(token, { maxLength: 8 }), (args) => {
      // Reference: walk the list the way the CLI documents it.
      let expected: { values: Map<string, string>; flags: Set<string>; positional: string[] } | string;
      const values = new Map<string, string>();
      const flags = new Set<string>();
      const positional: string[] = [];
      expected = { values, flags, positional };
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!;
        if (a === '--') {
          positional.push(...args.slice(i + 1));
          break;
        }
        if (a.startsWith('-') && a !== '-') {
          const [name, v] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
          if (['--type', '--mdev', '--root'].includes(name!)) {
            const val = v ?? args[++i];
            if (val === undefined) {
              expected = `apsim x: ${name} needs a value`;
              break;
            }
            values.set(name!, val);
          } else if (['-w', '--follow', '--json'].includes(name!) && v === undefined) flags.add(name!);
          else {
            expected = `apsim x: unknown option '${a}'`;
            break;
          }
        } else positional.push(a);
      }
      if (typeof expected !== 'string' && positional.length > 2) expected = `apsim x: unexpected argument '${positional[2]}'`;
      let got: unknown;
      try {
        const p = parseArgs('x', args, SPEC);
        got = { values: p.values, flags: p.flags, positional: p.positional };
      } catch (e) {
        assert.ok(e instanceof UsageError);
        got = e.message;
      }
      assert.deepEqual(got, expected);
    }),
    { seed: 5, numRuns: 500 },
  );
});

test('apsim hmc: operations, ids and on/off are checked before any daemon is looked for', async () => {
  for (const [args, msg] of [
    [['hmc', 'remove-adapter', '5', 'on'], 'apsim hmc: remove-adapter takes one id'],
    [['hmc', 'checkstop', '5', 'maybe'], 'apsim hmc: checkstop needs on or off'],
    [['hmc', 'config', '5'], 'apsim hmc: config needs on or off'],
    [['hmc', 'add-adapter', '0x100'], "apsim hmc: invalid id '0x100' (decimal or 0x hex, 0..255)"],
  ] as const) {
    let out = '';
    let err = '';
    const code = await main([...args, '--root', '/nonexistent-root'], (s) => (out += s), (s) => (err += s));
    assert.deepEqual([code, out], [2, ''], args.join(' '));
    assert.equal(err, `${msg}\nRun 'apsim --help' for usage.\n`, args.join(' '));
  }
});
