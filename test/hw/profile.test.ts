import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADAPTER_TYPES, ProfileError, builtinProfile, builtinProfileJson, builtinProfiles, parseProfile } from '../../src/hw/index.js';

function minimalJson(): any {
  return builtinProfileJson('minimal');
}

function expectError(edit: (j: any) => void, path: string, detail: RegExp): void {
  const j = minimalJson();
  edit(j);
  assert.throws(
    () => parseProfile(j),
    (e: unknown) => {
      assert.ok(e instanceof ProfileError, `expected ProfileError, got ${String(e)}`);
      assert.equal(e.path, path);
      assert.match(e.message, detail);
      assert.ok(e.message.startsWith(`${path}: `));
      return true;
    },
  );
}

test('builtin profiles validate, are JSON round-trippable and frozen', () => {
  assert.deepEqual(Object.keys(builtinProfiles).sort(), ['default', 'maximal', 'minimal']);
  for (const [name, p] of Object.entries(builtinProfiles)) {
    assert.equal(p.name, name);
    const again = parseProfile(JSON.parse(JSON.stringify(p)));
    assert.deepEqual(again, p);
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.adapters[0]));
  }
  const copy = builtinProfile('minimal');
  copy.adapters[0]!.queueDepth = 2;
  assert.equal(builtinProfiles.minimal!.adapters[0]!.queueDepth, 8);
  assert.throws(() => builtinProfile('nope'), /unknown builtin profile "nope"/);
});

test('default profile is a z16-like LPAR', () => {
  const p = builtinProfiles.default!;
  assert.equal(p.machine.type, '3931');
  assert.ok(p.facilities.apxa && p.facilities.qci && p.facilities.apft && p.facilities.aqic);
  assert.equal(p.maxAdapterId, 0x3f);
  assert.ok(p.config.usageDomains.length >= 24);
  const kinds = new Set(p.adapters.map((a) => `${a.type}${a.mode}`));
  for (const k of ['CEX8cca', 'CEX8accel', 'CEX8ep11', 'CEX7cca']) assert.ok(kinds.has(k), k);
  assert.ok(p.adapters.some((a) => a.type === 'CEX3C'), 'has a legacy card');
  assert.ok(p.adapters.some((a) => !p.config.adapters.includes(a.id)), 'has an installed but unconfigured adapter');
  for (const a of p.adapters) if (a.mode !== 'accel') assert.match(a.serialNumber, /^[0-9A-Z]{8,16}$/);
});

test('maximal profile: 256 x 256', () => {
  const p = builtinProfiles.maximal!;
  assert.equal(p.adapters.length, 256);
  assert.equal(p.config.adapters.length, 256);
  assert.equal(p.config.usageDomains.length, 256);
  assert.equal(p.config.controlDomains.length, 256);
  assert.equal(p.maxAdapterId, 255);
  assert.equal(p.maxDomainId, 255);
});

test('defaults: Na/Nd follow APXA', () => {
  const j = minimalJson();
  delete j.maxAdapterId;
  delete j.maxDomainId;
  assert.equal(parseProfile(j).maxAdapterId, 255);
  assert.equal(parseProfile(j).maxDomainId, 255);
  j.facilities.apxa = false;
  assert.equal(parseProfile(j).maxAdapterId, 63);
  assert.equal(parseProfile(j).maxDomainId, 15);
});

test('masks may be given as 0x strings', () => {
  const j = minimalJson();
  j.config.usageDomains = '0xf' + '0'.repeat(63);
  assert.deepEqual(parseProfile(j).config.usageDomains, [0, 1, 2, 3]);
});

test('every bad field is named', () => {
  expectError((j) => (j.adapters[1].type = 'CEX9'), 'profile.adapters[1].type', new RegExp(`unknown adapter type "CEX9"; expected one of ${ADAPTER_TYPES.join(', ')}`));
  expectError((j) => (j.adapters[1].mode = 'coprocessor'), 'profile.adapters[1].mode', /unknown adapter mode "coprocessor"; expected one of accel, cca, ep11/);
  expectError((j) => (j.adapters[0] = { id: 0, type: 'CEX3A', mode: 'cca' }), 'profile.adapters[0].mode', /not available on CEX3A/);
  expectError((j) => delete j.adapters[0].type, 'profile.adapters[0].type', /missing required field/);
  expectError((j) => (j.adapters[0].id = 300), 'profile.adapters[0].id', /out of range 0..255/);
  expectError((j) => (j.adapters[0].id = 0x20), 'profile.adapters[0].id', /exceeds maxAdapterId 15/);
  expectError((j) => (j.adapters[1].id = 0), 'profile.adapters[1].id', /duplicate adapter id 0/);
  expectError((j) => (j.adapters[0].queueDepth = 0), 'profile.adapters[0].queueDepth', /out of range 1..16/);
  expectError((j) => (j.adapters[0].queueDepth = 2.5), 'profile.adapters[0].queueDepth', /expected an integer/);
  expectError((j) => (j.adapters[0].maxMessageSize = 5000), 'profile.adapters[0].maxMessageSize', /not a multiple of 4096/);
  expectError((j) => (j.adapters[0].maxMessageSize = 65536), 'profile.adapters[0].maxMessageSize', /out of range/);
  expectError((j) => (j.adapters[0].serialNumber = 'bad serial'), 'profile.adapters[0].serialNumber', /is not up to 16/);
  expectError((j) => (j.adapters[0].rawType = 13), 'profile.adapters[0].rawType', /differs from CEX8/);
  expectError((j) => (j.adapters[0].ep11FwVersion = '1.0'), 'profile.adapters[0].ep11FwVersion', /only meaningful for mode "ep11"/);
  expectError((j) => (j.adapters[0].configured = 'yes'), 'profile.adapters[0].configured', /expected true or false/);
  expectError((j) => (j.adapters[0].resetLatencyNs = -1), 'profile.adapters[0].resetLatencyNs', /out of range/);
  expectError((j) => (j.adapters[0].colour = 'red'), 'profile.adapters[0].colour', /unknown field/);
  expectError((j) => (j.adapters = {}), 'profile.adapters', /expected an array/);
  expectError((j) => delete j.adapters, 'profile.adapters', /missing required field/);
  expectError((j) => (j.name = ''), 'profile.name', /is not a name/);
  expectError((j) => (j.facilities.apxa = 1), 'profile.facilities.apxa', /expected true or false/);
  expectError((j) => (j.facilities = { qci: false }), 'profile.facilities.apxa', /requires facilities.qci/);
  expectError((j) => (j.facilities.warp = true), 'profile.facilities.warp', /unknown field/);
  expectError((j) => ((j.facilities.apxa = false), (j.maxAdapterId = 64)), 'profile.maxAdapterId', /exceeds 63, the limit without APXA/);
  expectError((j) => ((j.facilities.apxa = false), (j.maxDomainId = 16)), 'profile.maxDomainId', /exceeds 15, the limit without APXA/);
  expectError((j) => (j.maxDomainId = 256), 'profile.maxDomainId', /out of range 0..255/);
  expectError((j) => (j.config.adapters = [0, 2]), 'profile.config.adapters[1]', /adapter 2 is not installed/);
  expectError((j) => (j.config.adapters = [0, 0]), 'profile.config.adapters[1]', /duplicate adapter id 0/);
  expectError((j) => (j.config.usageDomains = [1, 16]), 'profile.config.usageDomains[1]', /domain 16 out of range 0..15/);
  expectError((j) => (j.config.controlDomains = ['1']), 'profile.config.controlDomains[0]', /expected an integer/);
  expectError((j) => (j.config.controlDomains = '0x12'), 'profile.config.controlDomains', /exactly 64 hex digits/);
  expectError((j) => (j.config.controlDomains = 'f'.repeat(2)), 'profile.config.controlDomains', /must start with "0x"/);
  expectError((j) => (j.config.usageDomains = '0x' + 'f'.repeat(64)), 'profile.config.usageDomains', /domain 16 set in mask but out of range 0..15/);
  expectError((j) => delete j.config, 'profile.config', /missing required field/);
  expectError((j) => (j.timing.requestJitterNs = 'x'), 'profile.timing.requestJitterNs', /expected a number/);
  expectError((j) => (j.faults = { busyRate: 2 }), 'profile.faults.busyRate', /out of range 0..1/);
  expectError((j) => (j.faults = { stickyReset: ['5.4', 'x'] }), 'profile.faults.stickyReset[1]', /expected an APQN/);
  expectError((j) => (j.semantics = { rapqDisablesInterrupts: null }), 'profile.semantics.rapqDisablesInterrupts', /got null/);
  expectError((j) => (j.machine = { type: 'z16' }), 'profile.machine.type', /4-character machine type/);
  assert.throws(() => parseProfile(null), /^ProfileError: profile: expected an object, got null$/);
  assert.throws(() => parseProfile([]), /profile: expected an object, got an array/);
});

test('normalisation: stickyReset APQNs canonicalised, adapters sorted, serials defaulted', () => {
  const j = minimalJson();
  j.faults = { stickyReset: ['1.3'] };
  j.adapters.reverse();
  delete j.adapters[0].serialNumber;
  const p = parseProfile(j);
  assert.deepEqual(p.faults.stickyReset, ['01.0003']);
  assert.deepEqual(p.adapters.map((a) => a.id), [0, 1]);
  assert.equal(p.adapters[1]!.serialNumber, '');
  assert.equal(p.adapters[0]!.resetLatencyNs, 60_000_000);
});

test('the Machine constructor re-validates and copies its profile', async () => {
  const { Machine } = await import('../../src/hw/index.js');
  const p = builtinProfile('minimal');
  (p.adapters[0] as any).type = 'CEX9';
  assert.throws(() => new Machine(p, { now: () => 0 }), /profile.adapters\[0\].type: unknown adapter type "CEX9"/);
  const ok = builtinProfile('minimal');
  const m = new Machine(ok, { now: () => 0 });
  ok.config.adapters.pop();
  assert.deepEqual(m.profile.config.adapters, [0, 1]);
});
