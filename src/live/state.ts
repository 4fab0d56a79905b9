// Boot, HMC operations, journal replay and the observable-state fingerprint of a
// live host. Shared by the daemon (up), the tests and the benchmark.
import { E, FirstComeStrategy, type Kernel, type KGen } from '../kernel/index.js';
import { Host, BOOT_SETTLE_NS } from '../host/index.js';
import { builtinProfileJson, parseProfile, type Machine } from '../hw/index.js';
import { linkText, type KDir, type KLink, type Sysfs } from '../sysfs/index.js';
import { fastForward, runTaskFast } from './driver.js';
import type { HmcOpName, JournalEntry, Store, StoredProfile } from './store.js';
import { readFileSync } from 'node:fs';
import { fastRunner, GuestSet } from './guests.js';

/** Boots a host for live use: external time, first-come scheduling, keep going after bugs. */
export function bootLiveHost(profile: unknown): Host {
  const h = Host.boot({
    profile,
    time: 'external',
    strategy: new FirstComeStrategy(),
    stopOnBug: false,
    maxSteps: Number.MAX_SAFE_INTEGER,
    // A task per sysfs write for weeks: finished tasks must become garbage.
    retainTasks: false,
    recordChoices: false,
  });
  // Module init, the first scan, queue resets: in fast-forward, like a discrete boot.
  fastForward(h.k, h.k.now() + BOOT_SETTLE_NS);
  return h;
}

/** `--profile NAME|FILE` → the profile's JSON source (validated). */
export function loadProfile(spec: string): StoredProfile {
  let json: unknown;
  if (spec === 'default' || spec === 'maximal' || spec === 'minimal') json = builtinProfileJson(spec);
  else {
    let text: string;
    try {
      text = readFileSync(spec, 'utf8');
    } catch (e) {
      throw new Error(`profile '${spec}' is neither a builtin (default, maximal, minimal) nor a readable file: ${(e as Error).message}`);
    }
    try {
      json = JSON.parse(text) as unknown;
    } catch (e) {
      throw new Error(`profile file ${spec}: invalid JSON: ${(e as Error).message}`);
    }
  }
  parseProfile(json); // throws a readable validation error
  return { json, source: spec };
}

// ------------------------------------------------------------ HMC

/** Applies an HMC operation to the machine; true if it changed something. Throws HmcError. */
export function applyHmc(m: Machine, op: HmcOpName, id: number, on?: boolean): boolean {
  const h = m.hmc;
  switch (op) {
    case 'add-adapter':
      return h.addAdapter(id);
    case 'remove-adapter':
      return h.removeAdapter(id);
    case 'add-usage-domain':
      return h.addUsageDomain(id);
    case 'remove-usage-domain':
      return h.removeUsageDomain(id);
    case 'add-control-domain':
      return h.addControlDomain(id);
    case 'remove-control-domain':
      return h.removeControlDomain(id);
    case 'card-config':
      return h.configureCard(id, on !== false);
    case 'checkstop':
      return h.checkstop(id, on !== false);
  }
}

// ------------------------------------------------------------ replay

/** The guests of a live host, running in fast-forward until the live loop takes over. */
export function newGuestSet(h: Host): GuestSet {
  return new GuestSet(h.qemuEnv(), fastRunner(h.k, (ns) => h.k.advanceTo(ns)));
}

/** Longest stretch of virtual time replay lets pass between two journal entries. */
export const REPLAY_MAX_GAP_NS = 2_000_000_000;

export interface ReplayReport {
  ops: number;
  /** Entries whose replay failed (they had succeeded when journaled): divergence. */
  failed: Array<{ seq: number; error: string }>;
  /** Snapshots compared, and those that differed. */
  verified: number;
  mismatches: Array<{ seq: number; diff: string }>;
}

/**
 * Replays journal entries on a freshly booted host in fast-forward time: each entry
 * runs after the virtual time that separated it from the previous one (capped at
 * REPLAY_MAX_GAP_NS), and snapshots are compared when their position is reached.
 */
export function replayJournal(
  h: Host,
  entries: readonly JournalEntry[],
  snapshots: ReadonlyMap<number, { state: string; vt: number }> = new Map(),
  guests: GuestSet | null = null,
): ReplayReport {
  const k = h.k;
  const rep: ReplayReport = { ops: 0, failed: [], verified: 0, mismatches: [] };
  let prevVt = entries.length ? entries[0]!.vt : 0;
  for (const e of entries) {
    const gap = Math.max(0, Math.min(REPLAY_MAX_GAP_NS, e.vt - prevVt));
    prevVt = e.vt;
    if (gap > 0) fastForward(k, k.now() + gap);
    const op = e.op;
    try {
      if (op.kind === 'sysfs') {
        const r = runTaskFast(k, op.comm ?? 'replay', h.sysfs.write_gen(k, op.path, op.data, { uid: op.uid, ...(op.gid !== undefined ? { gid: op.gid } : {}) }));
        if (!r.ok) rep.failed.push({ seq: e.seq, error: `write ${JSON.stringify(op.data)} to ${op.path}: errno ${r.errno}` });
      } else if (op.kind === 'setattr') {
        const n = h.sysfs.find(op.path);
        const err = n ? h.sysfs.setattr(n, { ...(op.mode !== undefined ? { mode: op.mode } : {}), ...(op.owner !== undefined ? { uid: op.owner } : {}), ...(op.group !== undefined ? { gid: op.group } : {}) }, { uid: op.uid, gid: op.gid }) : E.ENOENT;
        if (err) rep.failed.push({ seq: e.seq, error: `chmod/chown of ${op.path}: errno ${err}` });
      } else if (op.kind === 'hmc') {
        applyHmc(h.machine, op.op, op.id, op.on);
        fastForward(k, k.now());
      } else if (op.kind === 'guest') {
        if (!guests) rep.failed.push({ seq: e.seq, error: `guest ${op.op} ${op.name}: no guests on this host` });
        else {
          // fastRunner: synchronous.
          void guests.apply(op);
          fastForward(k, k.now());
        }
      } else {
        rep.failed.push({ seq: e.seq, error: `unknown journal entry kind ${(op as { kind: string }).kind}` });
      }
    } catch (err) {
      rep.failed.push({ seq: e.seq, error: err instanceof Error ? err.message : String(err) });
    }
    rep.ops++;
    const snap = snapshots.get(e.seq);
    if (snap !== undefined) {
      // The live host took it once nothing was due within SETTLE_NS: let the same
      // virtual time pass (capped) and compare.
      fastForward(k, k.now() + Math.max(0, Math.min(SNAPSHOT_MAX_GAP_NS, snap.vt - e.vt)));
      const now = captureState(h);
      rep.verified++;
      if (now !== snap.state) rep.mismatches.push({ seq: e.seq, diff: firstDiff(snap.state, now) });
    }
  }
  fastForward(k, k.now() + SETTLE_NS);
  return rep;
}

/** Longest virtual time replay lets pass to reach a snapshot's time. */
export const SNAPSHOT_MAX_GAP_NS = 60_000_000_000;

/** Virtual time given to resets and rebinding at the end of a replay; a live snapshot needs this much quiet. */
export const SETTLE_NS = 500_000_000;

/** Boots from a store's profile and replays its journal. */
export function restoreFromStore(store: Store): { host: Host; report: ReplayReport; guests: GuestSet } {
  const p = store.profile;
  if (!p) throw new Error(`${store.path}: no profile stored`);
  const host = bootLiveHost(p.json);
  const snaps = new Map(store.snapshots().map((s) => [s.seq, { state: s.state, vt: s.vt }] as const));
  const guests = newGuestSet(host);
  const report = replayJournal(host, store.entries(), snaps, guests);
  return { host, report, guests };
}

// ------------------------------------------------------------ state fingerprint

const BUS_ATTRS = [
  'apmask',
  'aqmask',
  'ap_adapter_mask',
  'ap_usage_domain_mask',
  'ap_control_domain_mask',
  'ap_domain',
  'ap_max_adapter_id',
  'ap_max_domain_id',
  'config_time',
  'poll_thread',
  'poll_timeout',
  'ap_interrupts',
];
const DEVICE_ATTRS = ['config', 'chkstop', 'online'];
const MDEV_ATTRS = ['matrix', 'guest_matrix', 'control_domains'];

/**
 * The observable state that journal replay must reproduce, one "path=value" line
 * each, sorted: bus masks and parameters, every card and queue with its driver and
 * config/chkstop/online, and (once vfio_ap is loaded) every mdev's matrix. Counters
 * and timing-dependent values are left out.
 */
export function* captureState_gen(k: Kernel, sysfs: Sysfs): KGen<string> {
  const lines: string[] = [];
  const read = function* (path: string): KGen<string> {
    const r = yield* sysfs.read_gen(k, path);
    return r.ok ? r.data.replace(/\n+$/, '').replace(/\n/g, '\\n') : `<errno ${r.errno}>`;
  };
  for (const a of BUS_ATTRS) if (sysfs.find(`/sys/bus/ap/${a}`)) lines.push(`bus/ap/${a}=${yield* read(`/sys/bus/ap/${a}`)}`);
  const devDir = function* (dir: KDir, rel: string): KGen<void> {
    const drv = dir.children.get('driver');
    lines.push(`${rel}/driver=${drv && drv.type === 'link' ? linkText(drv as KLink).split('/').pop() : '-'}`);
    for (const a of DEVICE_ATTRS) if (dir.children.get(a)?.type === 'file') lines.push(`${rel}/${a}=${yield* read(`${dir.path}/${a}`)}`);
  };
  const ap = sysfs.find('/sys/devices/ap');
  if (ap && ap.type === 'dir') {
    for (const [name, c] of [...(ap as KDir).children].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (c.type !== 'dir' || !/^card[0-9a-f]{2}$/.test(name)) continue;
      yield* devDir(c as KDir, `devices/ap/${name}`);
      for (const [qn, q] of [...(c as KDir).children].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (q.type === 'dir' && /^[0-9a-f]{2}\.[0-9a-f]{4}$/.test(qn)) yield* devDir(q as KDir, `devices/ap/${name}/${qn}`);
      }
    }
  }
  const matrix = sysfs.find('/sys/devices/vfio_ap/matrix');
  if (matrix && matrix.type === 'dir') {
    for (const [name, c] of [...(matrix as KDir).children].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (c.type !== 'dir' || !/^[0-9a-f]{8}-/.test(name)) continue;
      lines.push(`devices/vfio_ap/matrix/${name}`);
      for (const a of MDEV_ATTRS) if ((c as KDir).children.get(a)?.type === 'file') lines.push(`devices/vfio_ap/matrix/${name}/${a}=${yield* read(`${c.path}/${a}`)}`);
    }
  }
  // chmod/chown results, in the order of their first change.
  for (const n of sysfs.withIattr) {
    const a = n.iattr!;
    lines.push(`${n.path.slice(sysfs.mountpoint.length + 1)} mode=${a.mode.toString(8).padStart(4, '0')} uid=${a.uid} gid=${a.gid}`);
  }
  return lines.join('\n') + '\n';
}

/** captureState_gen in fast-forward time (boot, replay, tests). */
export function captureState(h: Host): string {
  return runTaskFast(h.k, 'apsim-state', captureState_gen(h.k, h.sysfs));
}

/** The first differing line of two fingerprints, for messages. */
export function firstDiff(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return `expected ${JSON.stringify(x[i] ?? '<end>')}, got ${JSON.stringify(y[i] ?? '<end>')}`;
  }
  return 'identical';
}
