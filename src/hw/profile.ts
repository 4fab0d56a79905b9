// Host profile: the JSON description of a simulated IBM Z machine as seen from one LPAR —
// installed facilities, the LPAR's AP configuration (QCI masks), the crypto adapters and the
// timing/fault knobs. parseProfile validates untrusted JSON and returns a normalised profile with
// every default filled in, so the machine never has to guess.

import { ProfileError } from './errors.js';
import { MaskSyntaxError, maskIds, parseMask } from './mask.js';
import { formatApqn, parseApqn } from './apqn.js';

export const ADAPTER_TYPES = ['CEX2A', 'CEX2C', 'CEX3A', 'CEX3C', 'CEX4', 'CEX5', 'CEX6', 'CEX7', 'CEX8'] as const;
export type AdapterType = (typeof ADAPTER_TYPES)[number];

/** Raw AP type numbers as reported by TAPQ "at" (spec 2.5; pre-CEX4 numbers as in old Linux). */
export const AP_TYPE_NUMBER: Readonly<Record<AdapterType, number>> = Object.freeze({
  CEX2A: 6,
  CEX2C: 7,
  CEX3A: 8,
  CEX3C: 9,
  CEX4: 10,
  CEX5: 11,
  CEX6: 12,
  CEX7: 13,
  CEX8: 14,
});

export const ADAPTER_MODES = ['accel', 'cca', 'ep11'] as const;
/** accel = Accelerator, cca = CCA coprocessor, ep11 = EP11 coprocessor. */
export type AdapterMode = (typeof ADAPTER_MODES)[number];

/** Modes each type can be configured in (pre-CEX4 types come in fixed A or C variants). */
export const MODES_FOR_TYPE: Readonly<Record<AdapterType, readonly AdapterMode[]>> = Object.freeze({
  CEX2A: ['accel'],
  CEX2C: ['cca'],
  CEX3A: ['accel'],
  CEX3C: ['cca'],
  CEX4: ADAPTER_MODES,
  CEX5: ADAPTER_MODES,
  CEX6: ADAPTER_MODES,
  CEX7: ADAPTER_MODES,
  CEX8: ADAPTER_MODES,
});

/**
 * Facilities of the machine. STFLE bits: qci 12, apft 15, aqic 65, msax3 76. apsc/apxa/qact/rc8a/apsb
 * are QCI flag bits (spec 1.4) and therefore need qci. `ap` = AP instructions installed at all.
 */
export interface HostFacilities {
  ap: boolean;
  qci: boolean;
  apft: boolean;
  aqic: boolean;
  msax3: boolean;
  apxa: boolean;
  apsc: boolean;
  qact: boolean;
  rc8a: boolean;
  apsb: boolean;
}

export const FACILITY_NAMES = ['ap', 'qci', 'apft', 'aqic', 'msax3', 'apxa', 'apsc', 'qact', 'rc8a', 'apsb'] as const;

const FACILITY_DEFAULTS: HostFacilities = {
  ap: true,
  qci: true,
  apft: true,
  aqic: true,
  msax3: true,
  apxa: true,
  apsc: true,
  qact: true,
  rc8a: true,
  apsb: false,
};

export interface AdapterProfile {
  /** APID. */
  id: number;
  type: AdapterType;
  mode: AdapterMode;
  /** TAPQ "at". Equals AP_TYPE_NUMBER[type] unless a newer card is emulated (then > 14, mapped by QACT to `type`). */
  rawType: number;
  /** Number of queue slots (TAPQ qd = queueDepth - 1), 1..16. */
  queueDepth: number;
  /** Max request/reply size in bytes: 12288 (TAPQ ml 0) or a multiple of 4096 up to 61440. */
  maxMessageSize: number;
  /** Card serial number as the CCA/EP11 firmware reports it ("" for accelerators). */
  serialNumber: string;
  /** EP11 only: firmware API ordinal and version ("" / 0 otherwise). */
  ep11ApiOrdinal: number;
  ep11FwVersion: string;
  /** SCLP configuration state at power-on (false = standby: RC 03). */
  configured: boolean;
  /** Check-stopped at power-on (RC 04). */
  checkstopped: boolean;
  resetLatencyNs: number;
  requestLatencyNs: number;
}

export interface HostProfile {
  name: string;
  description: string;
  /** /proc/sysinfo identity: Manufacturer-Type-SequenceCode is the K8s plugin's machineid. */
  machine: { manufacturer: string; type: string; model: string; sequenceCode: string; lpar: string };
  facilities: HostFacilities;
  /** QCI Na: highest usable APID (≤ 63 without APXA). */
  maxAdapterId: number;
  /** QCI Nd: highest usable domain number (≤ 15 without APXA). */
  maxDomainId: number;
  /** The LPAR's AP configuration, i.e. the QCI APM / AQM / ADM, as ascending id lists. */
  config: { adapters: number[]; usageDomains: number[]; controlDomains: number[] };
  /** Installed adapters available to this LPAR (configured or not), ascending by id. */
  adapters: AdapterProfile[];
  timing: {
    /** Default RAPQ/ZAPQ duration (virtual ns). */
    resetLatencyNs: number;
    /** Default time from NQAP to reply ready (virtual ns). */
    requestLatencyNs: number;
    /** Uniform extra latency 0..jitter per request, drawn from the run PRNG. */
    requestJitterNs: number;
  };
  faults: {
    /** Probability that TAPQ/NQAP/DQAP answer RC 05 BUSY (drawn from the run PRNG). */
    busyRate: number;
    /** APQNs ("XX.YYYY") whose resets never complete until released through Machine.faults. */
    stickyReset: string[];
  };
  semantics: {
    /** Whether RAPQ (not only ZAPQ) disables interrupts; the spec marks this uncertain. */
    rapqDisablesInterrupts: boolean;
  };
}

/** Default queue depth (slots) and max message size per type when a profile omits them. */
export const DEFAULT_QUEUE_DEPTH = 8;
export const DEFAULT_MAX_MESSAGE_SIZE = 12288;
export const MAX_MESSAGE_SIZE_LIMIT = 15 * 4096;

// ---------------------------------------------------------------------------------------------
// Validation helpers. Each takes the JSON path so messages name the bad field.

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function obj(v: Json, path: string, allowed: readonly string[]): Record<string, Json> {
  if (v === undefined) throw new ProfileError(path, 'missing required field');
  if (!isObject(v)) throw new ProfileError(path, `expected an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ProfileError(`${path}.${k}`, `unknown field; expected one of ${allowed.join(', ')}`);
  }
  return v;
}

function bool(v: Json, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ProfileError(path, `expected true or false, got ${describe(v)}`);
  return v;
}

function int(v: Json, path: string, min: number, max: number, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new ProfileError(path, 'missing required field');
    return dflt;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ProfileError(path, `expected an integer, got ${describe(v)}`);
  if (v < min || v > max) throw new ProfileError(path, `${v} out of range ${min}..${max}`);
  return v;
}

function num(v: Json, path: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProfileError(path, `expected a number, got ${describe(v)}`);
  if (v < min || v > max) throw new ProfileError(path, `${v} out of range ${min}..${max}`);
  return v;
}

function str(v: Json, path: string, dflt?: string, re?: RegExp, reText?: string): string {
  if (v === undefined) {
    if (dflt === undefined) throw new ProfileError(path, 'missing required field');
    return dflt;
  }
  if (typeof v !== 'string') throw new ProfileError(path, `expected a string, got ${describe(v)}`);
  if (re && !re.test(v)) throw new ProfileError(path, `${JSON.stringify(v)} is not ${reText}`);
  return v;
}

function oneOf<T extends string>(v: Json, path: string, options: readonly T[], what: string): T {
  if (v === undefined) throw new ProfileError(path, 'missing required field');
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    throw new ProfileError(path, `unknown ${what} ${typeof v === 'string' ? JSON.stringify(v) : describe(v)}; expected one of ${options.join(', ')}`);
  }
  return v as T;
}

/** An id list: array of integers, or a "0x"+64-hex mask string. Returns ascending unique ids. */
function idList(v: Json, path: string, max: number, what: string): number[] {
  if (v === undefined) throw new ProfileError(path, 'missing required field');
  let ids: number[];
  if (typeof v === 'string') {
    try {
      ids = maskIds(parseMask(v));
    } catch (e) {
      if (e instanceof MaskSyntaxError) throw new ProfileError(path, e.message);
      throw e;
    }
    for (const id of ids) if (id > max) throw new ProfileError(path, `${what} ${id} set in mask but out of range 0..${max}`);
    return ids;
  }
  if (!Array.isArray(v)) throw new ProfileError(path, `expected an array of ${what}s or a 0x-mask string, got ${describe(v)}`);
  const seen = new Set<number>();
  v.forEach((x, i) => {
    const id = int(x, `${path}[${i}]`, 0, 255);
    if (id > max) throw new ProfileError(`${path}[${i}]`, `${what} ${id} out of range 0..${max}`);
    if (seen.has(id)) throw new ProfileError(`${path}[${i}]`, `duplicate ${what} ${id}`);
    seen.add(id);
  });
  return [...seen].sort((a, b) => a - b);
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');

/** Deterministic serial numbers in the style of real cards ("93AAC01F"; EP11 ones are 16 characters). */
function defaultSerial(mode: AdapterMode, id: number): string {
  if (mode === 'cca') return `93AAC${hex2(id).padStart(3, '0')}`;
  if (mode === 'ep11') return `93AAE${hex2(id).padStart(3, '0')}00000000`;
  return '';
}

function adapter(v: Json, path: string, p: { maxAdapterId: number; resetLatencyNs: number; requestLatencyNs: number }): AdapterProfile {
  const o = obj(v, path, [
    'id',
    'type',
    'mode',
    'rawType',
    'queueDepth',
    'maxMessageSize',
    'serialNumber',
    'ep11ApiOrdinal',
    'ep11FwVersion',
    'configured',
    'checkstopped',
    'resetLatencyNs',
    'requestLatencyNs',
  ]);
  const id = int(o.id, `${path}.id`, 0, 255);
  if (id > p.maxAdapterId) throw new ProfileError(`${path}.id`, `adapter id ${id} exceeds maxAdapterId ${p.maxAdapterId}`);
  const type = oneOf(o.type, `${path}.type`, ADAPTER_TYPES, 'adapter type');
  const mode = oneOf(o.mode, `${path}.mode`, ADAPTER_MODES, 'adapter mode');
  if (!MODES_FOR_TYPE[type].includes(mode)) {
    throw new ProfileError(`${path}.mode`, `mode "${mode}" not available on ${type}; expected one of ${MODES_FOR_TYPE[type].join(', ')}`);
  }
  const hw = AP_TYPE_NUMBER[type];
  const rawType = int(o.rawType, `${path}.rawType`, 1, 255, hw);
  if (rawType !== hw && (hw < 10 || rawType <= AP_TYPE_NUMBER.CEX8)) {
    throw new ProfileError(`${path}.rawType`, `raw type ${rawType} differs from ${type} (${hw}); only CEX4+ adapters may report a newer raw type (> 14)`);
  }
  const queueDepth = int(o.queueDepth, `${path}.queueDepth`, 1, 16, DEFAULT_QUEUE_DEPTH);
  const maxMessageSize = int(o.maxMessageSize, `${path}.maxMessageSize`, 4096, MAX_MESSAGE_SIZE_LIMIT, DEFAULT_MAX_MESSAGE_SIZE);
  if (maxMessageSize % 4096 !== 0) throw new ProfileError(`${path}.maxMessageSize`, `${maxMessageSize} is not a multiple of 4096`);
  const serialNumber = str(o.serialNumber, `${path}.serialNumber`, defaultSerial(mode, id), /^[0-9A-Z]{0,16}$/, 'up to 16 uppercase letters/digits');
  const ep11ApiOrdinal = int(o.ep11ApiOrdinal, `${path}.ep11ApiOrdinal`, 0, 0xffff, mode === 'ep11' ? 7 : 0);
  const ep11FwVersion = str(o.ep11FwVersion, `${path}.ep11FwVersion`, mode === 'ep11' ? '8.1' : '', /^[0-9.]*$/, 'a version like "8.1"');
  if (mode !== 'ep11' && (ep11ApiOrdinal !== 0 || ep11FwVersion !== '')) {
    throw new ProfileError(`${path}.${ep11ApiOrdinal !== 0 ? 'ep11ApiOrdinal' : 'ep11FwVersion'}`, 'only meaningful for mode "ep11"');
  }
  return {
    id,
    type,
    mode,
    rawType,
    queueDepth,
    maxMessageSize,
    serialNumber,
    ep11ApiOrdinal,
    ep11FwVersion,
    configured: bool(o.configured, `${path}.configured`, true),
    checkstopped: bool(o.checkstopped, `${path}.checkstopped`, false),
    resetLatencyNs: num(o.resetLatencyNs, `${path}.resetLatencyNs`, 0, 1e12, p.resetLatencyNs),
    requestLatencyNs: num(o.requestLatencyNs, `${path}.requestLatencyNs`, 0, 1e12, p.requestLatencyNs),
  };
}

/** Validates untrusted JSON and returns a normalised HostProfile; throws ProfileError naming the bad field. */
export function parseProfile(json: unknown): HostProfile {
  const root = 'profile';
  const o = obj(json, root, ['name', 'description', 'machine', 'facilities', 'maxAdapterId', 'maxDomainId', 'config', 'adapters', 'timing', 'faults', 'semantics']);
  const name = str(o.name, `${root}.name`, undefined, /^[A-Za-z0-9_.-]+$/, 'a name of letters, digits, "_", "." or "-"');
  const description = str(o.description, `${root}.description`, '');

  const mo = obj(o.machine ?? {}, `${root}.machine`, ['manufacturer', 'type', 'model', 'sequenceCode', 'lpar']);
  const machine = {
    manufacturer: str(mo.manufacturer, `${root}.machine.manufacturer`, 'IBM'),
    type: str(mo.type, `${root}.machine.type`, '3931', /^[0-9A-Z]{4}$/, 'a 4-character machine type'),
    model: str(mo.model, `${root}.machine.model`, 'A01'),
    sequenceCode: str(mo.sequenceCode, `${root}.machine.sequenceCode`, '0000000000012345', /^[0-9A-Z]{1,16}$/, 'up to 16 uppercase letters/digits'),
    lpar: str(mo.lpar, `${root}.machine.lpar`, 'LP01'),
  };

  const fo = obj(o.facilities ?? {}, `${root}.facilities`, FACILITY_NAMES);
  const facilities = {} as HostFacilities;
  for (const f of FACILITY_NAMES) facilities[f] = bool(fo[f], `${root}.facilities.${f}`, FACILITY_DEFAULTS[f]);
  for (const f of ['apxa', 'apsc', 'qact', 'rc8a', 'apsb'] as const) {
    if (facilities[f] && !facilities.qci) throw new ProfileError(`${root}.facilities.${f}`, 'is reported through QCI and requires facilities.qci');
  }
  const apxa = facilities.apxa;
  // Without APXA ids are limited to 6 / 4 bits (spec 1.4), whatever QCI's Na/Nd bytes say.
  const maxAdapterId = int(o.maxAdapterId, `${root}.maxAdapterId`, 0, 255, apxa ? 255 : 63);
  const maxDomainId = int(o.maxDomainId, `${root}.maxDomainId`, 0, 255, apxa ? 255 : 15);
  if (!apxa && maxAdapterId > 63) throw new ProfileError(`${root}.maxAdapterId`, `${maxAdapterId} exceeds 63, the limit without APXA`);
  if (!apxa && maxDomainId > 15) throw new ProfileError(`${root}.maxDomainId`, `${maxDomainId} exceeds 15, the limit without APXA`);

  const to = obj(o.timing ?? {}, `${root}.timing`, ['resetLatencyNs', 'requestLatencyNs', 'requestJitterNs']);
  const timing = {
    resetLatencyNs: num(to.resetLatencyNs, `${root}.timing.resetLatencyNs`, 0, 1e12, 5_000_000),
    requestLatencyNs: num(to.requestLatencyNs, `${root}.timing.requestLatencyNs`, 0, 1e12, 100_000),
    requestJitterNs: num(to.requestJitterNs, `${root}.timing.requestJitterNs`, 0, 1e12, 0),
  };

  if (!Array.isArray(o.adapters)) {
    throw new ProfileError(`${root}.adapters`, o.adapters === undefined ? 'missing required field' : `expected an array, got ${describe(o.adapters)}`);
  }
  const adapters = o.adapters.map((a, i) => adapter(a, `${root}.adapters[${i}]`, { maxAdapterId, ...timing }));
  const byId = new Map<number, number>();
  adapters.forEach((a, i) => {
    const prev = byId.get(a.id);
    if (prev !== undefined) throw new ProfileError(`${root}.adapters[${i}].id`, `duplicate adapter id ${a.id} (also adapters[${prev}])`);
    byId.set(a.id, i);
  });
  adapters.sort((a, b) => a.id - b.id);

  const co = obj(o.config, `${root}.config`, ['adapters', 'usageDomains', 'controlDomains']);
  const config = {
    adapters: idList(co.adapters, `${root}.config.adapters`, maxAdapterId, 'adapter id'),
    usageDomains: idList(co.usageDomains, `${root}.config.usageDomains`, maxDomainId, 'domain'),
    controlDomains: idList(co.controlDomains, `${root}.config.controlDomains`, maxDomainId, 'domain'),
  };
  for (const id of config.adapters) {
    if (!byId.has(id)) {
      const where = Array.isArray(co.adapters) ? `[${(co.adapters as number[]).indexOf(id)}]` : '';
      throw new ProfileError(`${root}.config.adapters${where}`, `adapter ${id} is not installed (no entry in profile.adapters)`);
    }
  }

  const xo = obj(o.faults ?? {}, `${root}.faults`, ['busyRate', 'stickyReset']);
  const sticky = xo.stickyReset ?? [];
  if (!Array.isArray(sticky)) throw new ProfileError(`${root}.faults.stickyReset`, `expected an array of "XX.YYYY" strings, got ${describe(sticky)}`);
  const faults = {
    busyRate: num(xo.busyRate, `${root}.faults.busyRate`, 0, 1, 0),
    stickyReset: sticky.map((s, i) => {
      const p = `${root}.faults.stickyReset[${i}]`;
      const q = typeof s === 'string' ? parseApqn(s) : undefined;
      if (q === undefined) throw new ProfileError(p, `expected an APQN "XX.YYYY", got ${describe(s)}`);
      return formatApqn(q);
    }),
  };

  const so = obj(o.semantics ?? {}, `${root}.semantics`, ['rapqDisablesInterrupts']);
  const semantics = { rapqDisablesInterrupts: bool(so.rapqDisablesInterrupts, `${root}.semantics.rapqDisablesInterrupts`, true) };

  return { name, description, machine, facilities, maxAdapterId, maxDomainId, config, adapters, timing, faults, semantics };
}
