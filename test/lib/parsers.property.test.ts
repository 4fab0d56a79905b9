// Property tests for the parsers of untrusted input that have no other home: the
// vfio_ap id and ap_config stores, the synthetic uevent writer, apsim hmc's ids and
// host profiles. Each one either parses to exactly what was meant or fails the
// documented way — never with a stray exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Errno, E } from '../../src/kernel/index.js';
import { ap_config_parse, ap_config_show, parse_id, AP_CONFIG_STRLEN } from '../../src/vfio_ap/matrix.js';
import { kstrtoull } from '../../src/lib/kstrto.js';
import { newMask, setBit, maskIds, parseProfile, builtinProfileJson, ProfileError } from '../../src/hw/index.js';
import { parse_synth_uevent, KOBJ_ACTIONS } from '../../src/sysfs/uevent.js';
import { parseId, UsageError } from '../../src/live/client.js';

const ids = fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 12 });
const errnoOf = (f: () => unknown): number | 'ok' => {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof Errno) return e.errno;
    throw e;
  }
};

test('property: ap_config reads back what ap_config shows, with or without the newline (fast-check)', () => {
  fc.assert(
    fc.property(ids, ids, ids, fc.boolean(), (a, q, d, nl) => {
      const m = { apm: newMask(), aqm: newMask(), adm: newMask() };
      for (const x of a) setBit(m.apm, x);
      for (const x of q) setBit(m.aqm, x);
      for (const x of d) setBit(m.adm, x);
      const text = ap_config_show(m as Parameters<typeof ap_config_show>[0]);
      assert.equal(text.length, AP_CONFIG_STRLEN);
      const r = ap_config_parse(nl ? text : text.slice(0, -1));
      const sorted = (x: number[]) => [...x].sort((i, j) => i - j);
      assert.deepEqual([maskIds(r.apm), maskIds(r.aqm), maskIds(r.adm)], [sorted(a), sorted(q), sorted(d)]);
    }),
  );
});

test('property: any ap_config write parses or is EINVAL (fast-check)', () => {
  const piece = fc.oneof(fc.constantFrom('0x', ',', '\n', 'f', '0', 'g', ' ', '0X'), fc.stringMatching(/^[0-9a-fA-F]{0,70}$/), fc.string({ maxLength: 8 }));
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
      const r = errnoOf(() => ap_config_parse(parts.join('')));
      assert.ok(r === 'ok' || r === E.EINVAL, `errno ${r}`);
    }),
  );
});

test('property: the assign/unassign id parser is kstrtoul(buf, 0) (fast-check)', () => {
  const spelled = fc.tuple(fc.bigInt({ min: 0n, max: (1n << 66n) }), fc.constantFrom('dec', 'hex', 'oct'), fc.constantFrom('', '\n', '\n\n', ' ', 'x'), fc.boolean());
  fc.assert(
    fc.property(spelled, ([v, how, tail, plus]) => {
      const body = how === 'dec' ? v.toString(10) : how === 'hex' ? `0x${v.toString(16)}` : `0${v.toString(8)}`;
      const buf = `${plus ? '+' : ''}${body}${tail}`;
      const ref = kstrtoull(buf, 0);
      const got = errnoOf(() => parse_id(buf));
      if (typeof ref === 'number') assert.equal(got, -ref);
      else {
        assert.equal(got, 'ok');
        assert.equal(parse_id(buf), ref > 0xffff_ffffn ? Number.MAX_SAFE_INTEGER : Number(ref));
      }
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), (s) => {
      const r = errnoOf(() => parse_id(s));
      assert.ok(r === 'ok' || r === E.EINVAL || r === E.ERANGE);
    }),
  );
});

test('property: a synthetic uevent write parses to its action and arguments, and anything else to one of two messages (fast-check)', () => {
  const alnum = fc.stringMatching(/^[0-9A-Za-z]{1,8}$/);
  const uuid = fc.uuid();
  fc.assert(
    fc.property(fc.constantFrom(...KOBJ_ACTIONS), fc.option(fc.tuple(uuid, fc.array(fc.tuple(alnum, alnum), { maxLength: 3 }))), fc.constantFrom('', '\n', '\0'), (action, args, end) => {
      const text = args === null ? action : `${action} ${args[0]}${args[1].map(([k, v]) => ` ${k}=${v}`).join('')}`;
      const r = parse_synth_uevent(text + end);
      const env = args === null ? ['SYNTH_UUID=0'] : [`SYNTH_UUID=${args[0]}`, ...args[1].map(([k, v]) => `SYNTH_ARG_${k}=${v}`)];
      assert.deepEqual(r, { action, env });
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), (s) => {
      const r = parse_synth_uevent(s);
      if ('error' in r) assert.ok(['unknown uevent action string', 'incorrect uevent action arguments'].includes(r.error));
      else {
        assert.ok(KOBJ_ACTIONS.includes(r.action));
        assert.match(r.env[0]!, /^SYNTH_UUID=(0|[0-9a-fA-F-]{36})$/);
        for (const e of r.env.slice(1)) assert.match(e, /^SYNTH_ARG_[0-9A-Za-z]+=[0-9A-Za-z]+$/);
      }
    }),
  );
});

test('property: apsim hmc ids are decimal or 0x hex in 0..255, everything else a usage error (fast-check)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.boolean(), fc.boolean(), (v, hex, upper) => {
      const s = hex ? `0x${upper ? v.toString(16).toUpperCase() : v.toString(16)}` : String(v);
      assert.equal(parseId(s, 'adapter'), v);
    }),
  );
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -1000, max: 100_000 }).map(String)), (s) => {
      const ok = (/^\d+$/.test(s) && Number(s) <= 255) || (/^0x[0-9a-f]+$/i.test(s) && parseInt(s.slice(2), 16) <= 255);
      if (ok) assert.equal(parseId(s, 'domain'), /^0x/i.test(s) ? parseInt(s.slice(2), 16) : Number(s));
      else assert.throws(() => parseId(s, 'domain'), (e: unknown) => e instanceof UsageError && e.message === `apsim hmc: invalid domain '${s}' (decimal or 0x hex, 0..255)`);
    }),
  );
});

/** Replaces the value at a random path of a JSON document. */
function mutateAt(doc: unknown, path: number[], value: unknown): unknown {
  if (path.length === 0 || doc === null || typeof doc !== 'object') return value;
  const keys = Object.keys(doc as object);
  if (keys.length === 0) return value;
  const k = keys[path[0]! % keys.length]!;
  const copy: Record<string, unknown> = Array.isArray(doc) ? ([...doc] as unknown as Record<string, unknown>) : { ...(doc as Record<string, unknown>) };
  copy[k] = mutateAt((doc as Record<string, unknown>)[k], path.slice(1), value);
  return copy;
}

test('property: a profile is valid or a ProfileError naming the field; valid ones are normal forms (fast-check)', () => {
  const base = builtinProfileJson('default');
  fc.assert(
    // Values that are often right (small numbers, booleans, a dropped field) as well as junk.
    fc.property(fc.array(fc.nat(), { maxLength: 5 }), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: 0, max: 20 }), fc.boolean(), fc.constant(undefined)), (path, value) => {
      const doc = mutateAt(base, path, value);
      let p: ReturnType<typeof parseProfile>;
      try {
        p = parseProfile(doc);
      } catch (e) {
        assert.ok(e instanceof ProfileError, `not a ProfileError: ${String(e)}`);
        assert.match(e.message, /profile/);
        return;
      }
      // The normalised profile is itself a valid profile that normalises to itself.
      assert.deepEqual(parseProfile(JSON.parse(JSON.stringify(p))), p);
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), (doc) => {
      try {
        parseProfile(doc);
      } catch (e) {
        assert.ok(e instanceof ProfileError, `not a ProfileError: ${String(e)}`);
      }
    }),
  );
});
