// Kernel uevents (lib/kobject_uevent.c): the environment a kobject_uevent_env()
// builds, the sequence number, the log userspace listeners (udev, the live host,
// tests) read, synthetic uevents written to "uevent" attributes, and the text
// `udevadm monitor --kernel --property` prints for each event.
import { E } from '../kernel/index.js';
import type { KDir, Kset } from './kernfs.js';

export type KobjAction = 'add' | 'remove' | 'change' | 'move' | 'online' | 'offline' | 'bind' | 'unbind';

/** In the order of enum kobject_action (kobject_action_type() tries them in order). */
export const KOBJ_ACTIONS: readonly KobjAction[] = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'];

/** include/linux/kobject.h */
export const UEVENT_NUM_ENVP = 64;
export const UEVENT_BUFFER_SIZE = 2048;

/** struct kobj_uevent_env: "KEY=value" strings, bounded like the kernel's buffer. */
export class UeventEnv {
  readonly envp: string[] = [];
  buflen = 0;

  /** add_uevent_var(): 0, or -ENOMEM when the env is full (the kernel WARNs). */
  add(v: string): number {
    if (this.envp.length >= UEVENT_NUM_ENVP - 2) return -E.ENOMEM;
    if (this.buflen + v.length + 1 > UEVENT_BUFFER_SIZE) return -E.ENOMEM;
    this.envp.push(v);
    this.buflen += v.length + 1;
    return 0;
  }
}

/** struct kset_uevent_ops */
export interface KsetUeventOps {
  /** false drops the event. */
  filter?(kobj: KDir): boolean;
  /** The SUBSYSTEM value; null drops the event. Default: the kset's name. */
  name?(kobj: KDir): string | null;
  /** Adds the kset-specific variables; a non-zero return drops the event. */
  uevent?(kobj: KDir, env: UeventEnv): number | void;
}

export interface Uevent {
  readonly seqnum: number;
  /** Virtual time (ns) at which it was sent. */
  readonly ts: number;
  readonly action: KobjAction;
  readonly devpath: string;
  readonly subsystem: string;
  /** The whole environment in the kernel's order: ACTION, DEVPATH, SUBSYSTEM, ..., SEQNUM. */
  readonly env: readonly string[];
}

/** The broadcast side: sequence numbers, a bounded history and subscribers. */
export class UeventLog {
  /** uevent_seqnum: the last number handed out. */
  seqnum = 0;
  private readonly events: Uevent[] = [];
  /** Index of the oldest kept event in events (dropped ones are compacted lazily). */
  private head = 0;
  private readonly listeners = new Set<(e: Uevent) => void>();

  constructor(
    /** How many events the history keeps (the oldest are dropped). */
    readonly capacity = 10_000,
  ) {}

  emit(e: Uevent): void {
    // A sent uevent never changes (and, frozen, costs world snapshots nothing).
    Object.freeze(e.env);
    this.events.push(Object.freeze(e));
    if (this.events.length - this.head > this.capacity) this.head++;
    if (this.head >= this.capacity) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    for (const l of this.listeners) l(e);
  }

  /** Events still kept, optionally only those after a sequence number. */
  list(afterSeq = 0): Uevent[] {
    const ev = this.events;
    let i = this.head;
    // Sequence numbers ascend: skip to the first one after afterSeq.
    if (afterSeq > 0) {
      let lo = i;
      let hi = ev.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ev[mid]!.seqnum <= afterSeq) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
    }
    return ev.slice(i);
  }

  /** Calls fn for every future event; returns the unsubscribe function. */
  subscribe(fn: (e: Uevent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  clear(): void {
    this.events.length = 0;
    this.head = 0;
  }
}

/** kobject_get_path() without the mount point: "/devices/ap/card05". */
export function kobject_get_path(kobj: KDir): string {
  const parts: string[] = [];
  for (let n: KDir | null = kobj; n !== null && n.parent !== null; n = n.parent) parts.push(n.name);
  return '/' + parts.reverse().join('/');
}

/** The kset a kobject reports through: its own, or the first one up the parents. */
export function kobject_top_kset(kobj: KDir): Kset | null {
  let top: KDir = kobj;
  while (top.kset === null && top.parent !== null) top = top.parent;
  return top.kset;
}

/**
 * kobject_uevent_env(): builds the environment and broadcasts it. Returns 0 (also
 * when a filter drops the event, as the kernel does) or a negative errno.
 */
export function kobject_uevent_env(log: UeventLog, now: number, kobj: KDir, action: KobjAction, envp_ext?: readonly string[] | null): number {
  const kset = kobject_top_kset(kobj);
  if (kset === null) return -E.EINVAL; // "attempted to send uevent without kset!"
  if (kobj.uevent_suppress) return 0;
  const ops = kset.uevent_ops;
  if (ops?.filter && !ops.filter(kobj)) return 0;
  const subsystem = ops?.name ? ops.name(kobj) : kset.name;
  if (!subsystem) return 0;
  const devpath = kobject_get_path(kobj);
  const env = new UeventEnv();
  let r = env.add(`ACTION=${action}`) || env.add(`DEVPATH=${devpath}`) || env.add(`SUBSYSTEM=${subsystem}`);
  if (r) return r;
  if (envp_ext) for (const v of envp_ext) if ((r = env.add(v))) return r;
  if (ops?.uevent) {
    r = ops.uevent(kobj, env) ?? 0;
    if (r) return r;
  }
  // An unbind event must not trigger module loading: MODALIAS is removed.
  if (action === 'unbind') zap_modalias_env(env);
  const seqnum = log.seqnum + 1;
  if ((r = env.add(`SEQNUM=${seqnum}`))) return r;
  log.seqnum = seqnum;
  log.emit({ seqnum, ts: now, action, devpath, subsystem, env: env.envp });
  return 0;
}

function zap_modalias_env(env: UeventEnv): void {
  for (let i = env.envp.length - 1; i >= 0; i--) {
    const v = env.envp[i]!;
    if (v.startsWith('MODALIAS=')) {
      env.envp.splice(i, 1);
      env.buflen -= v.length + 1;
    }
  }
}

export interface SynthParse {
  readonly action: KobjAction;
  /** The extra variables: ["SYNTH_UUID=0"] or ["SYNTH_UUID=<uuid>", "SYNTH_ARG_K=V", ...]. */
  readonly env: readonly string[];
}

/**
 * Parses what is written to a "uevent" attribute (kobject_action_type() and
 * kobject_action_args()): "<action>" or "<action> <uuid> [KEY=VALUE ...]" with one
 * trailing newline or NUL ignored; KEY and VALUE alphanumeric. Returns a message
 * (the kernel's pr_warn text) on error.
 */
export function parse_synth_uevent(buf: string): SynthParse | { error: string } {
  let count = buf.length;
  if (count && (buf[count - 1] === '\n' || buf[count - 1] === '\0')) count--;
  if (!count) return { error: 'unknown uevent action string' };
  const sp = buf.indexOf(' ');
  const hasArgs = sp >= 0 && sp < count;
  const word = buf.slice(0, hasArgs ? sp : count);
  const action = KOBJ_ACTIONS.find((a) => a === word);
  if (action === undefined) return { error: 'unknown uevent action string' };
  if (!hasArgs) return { action, env: ['SYNTH_UUID=0'] };
  const env = action_args(buf.slice(sp + 1, buf.length));
  return env === null ? { error: 'incorrect uevent action arguments' } : { action, env };
}

const UUID_STRING_LEN = 36;

/** uuid_is_valid(): 8-4-4-4-12 hex digits. */
export function uuid_is_valid(s: string): boolean {
  if (s.length < UUID_STRING_LEN) return false;
  for (let i = 0; i < UUID_STRING_LEN; i++) {
    const c = s[i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== '-') return false;
    } else if (!/[0-9a-fA-F]/.test(c)) return false;
  }
  return true;
}

function isalnum(c: string): boolean {
  return /^[0-9A-Za-z]$/.test(c);
}

function action_args(buf: string): string[] | null {
  let count = buf.length;
  if (count && (buf[count - 1] === '\n' || buf[count - 1] === '\0')) count--;
  if (!count) return null;
  if (count < UUID_STRING_LEN || !uuid_is_valid(buf)) return null;
  const env = [`SYNTH_UUID=${buf.slice(0, UUID_STRING_LEN)}`];
  let next = UUID_STRING_LEN;
  const end = count - 1; // index of the last character
  while (next <= end) {
    if (buf[next] !== ' ') return null;
    const key = ++next;
    if (key > end) return null;
    let i = key;
    while (i <= end && buf[i] !== '=') if (!isalnum(buf[i++]!)) return null;
    if (i === key || i > end || buf[i] !== '=') return null;
    const val = ++i;
    if (val > end) return null;
    let j = val;
    while (j <= end && buf[j] !== ' ') if (!isalnum(buf[j++]!)) return null;
    if (j === val) return null;
    env.push(`SYNTH_ARG_${buf.slice(key, i - 1)}=${buf.slice(val, j)}`);
    next = j;
  }
  return env;
}

/** The header `udevadm monitor --kernel` prints before the first event. */
export function udevMonitorHeader(): string {
  return 'monitor will print the received events for:\nKERNEL - the kernel uevent\n\n';
}

/**
 * One event as `udevadm monitor --kernel [--property]` prints it:
 * "KERNEL[<sec>.<usec>] <action padded to 8> <devpath> (<subsystem>)", then with
 * --property every KEY=value line and an empty line. The timestamp is the
 * receiver's CLOCK_MONOTONIC; here the virtual time of the event.
 */
export function formatUdevMonitor(e: Uevent, property = true): string {
  const sec = Math.floor(e.ts / 1e9);
  const usec = Math.floor((e.ts % 1e9) / 1000);
  let s = `KERNEL[${sec}.${String(usec).padStart(6, '0')}] ${e.action.padEnd(8)} ${e.devpath} (${e.subsystem})\n`;
  if (property) {
    for (const v of e.env) s += `${v}\n`;
    s += '\n';
  }
  return s;
}
