// Built-in host profiles. Written as the JSON a user would supply and run through parseProfile,
// so they are validated exactly like user profiles and stay plain JSON data.

import { parseProfile, type HostProfile, type AdapterMode, type AdapterType } from './profile.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A z16 (machine type 3931) LPAR with APXA. Na = 0x3f as in spec scenario 10. Nd = 0xff so that the
 * spec's scenario domains (0x47, 0xab) exist; real firmware may report fewer domains. Adapters:
 * CEX8/CEX7/CEX6 in all three modes, adapter 7 installed but not configured for this LPAR
 * (over-provisioning, scenario 11), one legacy CEX3C that the AP bus never binds, and adapter 0x0c
 * configured in QCI but in SCLP standby (RC 03).
 */
const defaultJson = {
  name: 'default',
  description: 'z16 LPAR: mixed CEX8S/CEX7S/CEX6S adapters, 34 usage domains, APXA',
  machine: { manufacturer: 'IBM', type: '3931', model: 'A01', sequenceCode: '00000000000A1B2C', lpar: 'LP01' },
  facilities: { ap: true, qci: true, apft: true, aqic: true, msax3: true, apxa: true, apsc: true, qact: true, rc8a: true, apsb: false },
  maxAdapterId: 0x3f,
  maxDomainId: 0xff,
  config: {
    adapters: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0b, 0x0c],
    usageDomains: [...range(0x00, 0x1f), 0x47, 0xab],
    controlDomains: [...range(0x00, 0x1f), 0x47, 0xab],
  },
  adapters: [
    { id: 0x00, type: 'CEX8', mode: 'cca', serialNumber: '93AADFK7' },
    { id: 0x01, type: 'CEX8', mode: 'accel' },
    { id: 0x02, type: 'CEX8', mode: 'ep11', serialNumber: '93AADHZU00000000', ep11FwVersion: '8.1', ep11ApiOrdinal: 7 },
    { id: 0x03, type: 'CEX7', mode: 'cca', serialNumber: '93AACBW3' },
    { id: 0x04, type: 'CEX7', mode: 'ep11', serialNumber: '93AACCR100000000', ep11FwVersion: '7.4', ep11ApiOrdinal: 6 },
    { id: 0x05, type: 'CEX8', mode: 'cca', serialNumber: '93AADFL2' },
    { id: 0x06, type: 'CEX8', mode: 'cca', serialNumber: '93AADFL9' },
    { id: 0x07, type: 'CEX8', mode: 'cca', serialNumber: '93AADFM4' },
    { id: 0x08, type: 'CEX7', mode: 'accel' },
    { id: 0x09, type: 'CEX6', mode: 'cca', serialNumber: '93AABKT6' },
    { id: 0x0a, type: 'CEX3C', mode: 'cca', queueDepth: 8, serialNumber: '93AA0412' },
    { id: 0x0b, type: 'CEX8', mode: 'accel', queueDepth: 8 },
    { id: 0x0c, type: 'CEX8', mode: 'cca', serialNumber: '93AADFN0', configured: false },
  ],
  timing: { resetLatencyNs: 5_000_000, requestLatencyNs: 100_000, requestJitterNs: 0 },
  faults: { busyRate: 0, stickyReset: [] },
  semantics: { rapqDisablesInterrupts: true },
};

/** 256 adapters x 256 domains, everything configured: a stress profile for boot and scan cost. */
function maximalJson(): unknown {
  const types: AdapterType[] = ['CEX4', 'CEX5', 'CEX6', 'CEX7', 'CEX8'];
  const modes: AdapterMode[] = ['cca', 'accel', 'ep11'];
  return {
    name: 'maximal',
    description: '256 adapters x 256 usage/control domains (APXA, Na = Nd = 255)',
    machine: { manufacturer: 'IBM', type: '3931', model: 'A01', sequenceCode: '00000000000FFFFF', lpar: 'LPMAX' },
    facilities: {},
    maxAdapterId: 255,
    maxDomainId: 255,
    config: { adapters: range(0, 255), usageDomains: range(0, 255), controlDomains: range(0, 255) },
    adapters: range(0, 255).map((id) => ({ id, type: types[id % types.length], mode: modes[id % modes.length] })),
    timing: { resetLatencyNs: 1_000_000, requestLatencyNs: 100_000 },
  };
}

/** Two adapters x four domains for unit tests. Reset latency 60 ms as in spec scenario 25. */
const minimalJson = {
  name: 'minimal',
  description: 'test machine: CEX8C at 00, CEX7A at 01, usage/control domains 0-3',
  facilities: {},
  maxAdapterId: 0x0f,
  maxDomainId: 0x0f,
  config: { adapters: [0, 1], usageDomains: [0, 1, 2, 3], controlDomains: [0, 1, 2, 3] },
  adapters: [
    { id: 0, type: 'CEX8', mode: 'cca', queueDepth: 8, serialNumber: '93AAMIN0' },
    { id: 1, type: 'CEX7', mode: 'accel', queueDepth: 4 },
  ],
  timing: { resetLatencyNs: 60_000_000, requestLatencyNs: 1_000_000, requestJitterNs: 0 },
};

/** The JSON sources of the built-in profiles (for export, docs and round-trip tests). */
export function builtinProfileJson(name: 'default' | 'maximal' | 'minimal'): unknown {
  const src = name === 'default' ? defaultJson : name === 'minimal' ? minimalJson : maximalJson();
  return JSON.parse(JSON.stringify(src));
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Validated built-in profiles, deeply frozen (use builtinProfile(name) for an editable copy). */
export const builtinProfiles: Readonly<Record<string, HostProfile>> = deepFreeze({
  default: parseProfile(builtinProfileJson('default')),
  maximal: parseProfile(builtinProfileJson('maximal')),
  minimal: parseProfile(builtinProfileJson('minimal')),
});

/** A fresh deep copy of a built-in profile (profiles are plain data; callers may edit the copy). */
export function builtinProfile(name: string): HostProfile {
  const p = builtinProfiles[name];
  if (!p) throw new RangeError(`unknown builtin profile "${name}"; expected one of ${Object.keys(builtinProfiles).join(', ')}`);
  return structuredClone(p);
}
