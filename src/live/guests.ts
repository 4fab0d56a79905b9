// Guests of the live host: QEMU processes (src/qemu) with at most one vfio-ap device
// each, started, stopped, hot-plugged and reset through the API (`apsim guest`).
//
// Every state-changing guest operation (start, stop, device add/del, reset) is a
// journal entry. Replay re-executes them in order on the freshly booted host, so after
// a restart (clean or kill -9) the guests that were running are running again: freshly
// started QEMU processes (a new VM, the guest's AP bus boots again), with the devices
// they had. Notifications QEMU handles (REQ: the host wants the mdev back, the device is
// unplugged; CFG_CHG: the guest's AP configuration changed) are not journaled: replaying
// the host-side operation that caused them produces them again.
import type { Kernel, KGen, Task } from '../kernel/index.js';
import { RunStatus } from '../kernel/index.js';
import { Qemu, QemuError, type QemuEnv, type VfioApDevice } from '../qemu/index.js';
import { guest_tapq, kvm_s390_crycb_masks } from '../kvm/index.js';
import { apqn, formatApqn, maskIds } from '../hw/index.js';

/** A guest operation as journaled. */
export type GuestOpName = 'start' | 'stop' | 'device-add' | 'device-del' | 'reset';
export interface GuestOp {
  readonly kind: 'guest';
  readonly op: GuestOpName;
  readonly name: string;
  readonly mdev?: string;
}

/** An event on the SSE stream. */
export interface GuestEvent {
  readonly type: 'guest';
  readonly guest: string;
  /** start, stop, device_add, device_del, reset: API operations; req, cfg_chg: notifications QEMU handled. */
  readonly action: 'start' | 'stop' | 'device_add' | 'device_del' | 'reset' | 'req' | 'cfg_chg';
  readonly mdev?: string;
  /** req/cfg_chg: how many QEMU handled since the last event (and in total). */
  readonly count?: number;
  readonly total?: number;
}

/** A refused guest operation: HTTP status and the message the user sees. */
export class GuestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const GUEST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The QEMU device id of a guest's vfio-ap device (`-device vfio-ap,id=vfio_ap0,...`). */
export const DEVICE_ID = 'vfio_ap0';

export function mdevPath(uuid: string): string {
  return `/sys/bus/mdev/devices/${uuid}`;
}

interface Tracked {
  readonly dev: VfioApDevice;
  req: number;
  cfg: number;
}

export interface Guest {
  readonly name: string;
  readonly qemu: Qemu;
  /** Wall clock of the (re)start, ms. */
  readonly started: number;
  readonly tracked: Tracked[];
}

export interface GuestSummary {
  name: string;
  running: boolean;
  mdev: string | null;
  device_id: string | null;
  started: string;
  req_handled: number;
  cfg_chg_handled: number;
  ap_devices: number;
}

export interface TapqView {
  apqn: string;
  cc: number | null;
  rc: number | null;
  /** E, R, F, I, A (async) when set. */
  flags: string;
  pgm?: string;
  exit?: number;
}

export interface GuestView {
  name: string;
  mdev: string | null;
  crycb: { apm: number[]; aqm: number[]; adm: number[] };
  tapq: TapqView[];
  ap_bus: { devices: string[]; scans: number };
  cfg_chg_handled: number;
  req_handled: number;
}

/** How a QEMU task runs: to completion in fast-forward (replay) or on the live loop. */
export type QemuRunner = <T>(q: Qemu, body: KGen<T>, vcpu?: boolean) => T | Promise<T>;

function spawnIn<T>(q: Qemu, body: KGen<T>, vcpu: boolean): Task {
  return vcpu ? q.spawnVcpu(0, body) : q.spawnMain(body);
}

/** Unwraps a task error: QEMU's own message for a QemuError. */
function taskError(t: Task): Error {
  const e = t.error as (Error & { cause?: unknown }) | undefined | null;
  if (e && e.cause instanceof QemuError) return new GuestError(422, e.cause.message);
  if (e instanceof QemuError) return new GuestError(422, e.message);
  return e instanceof Error ? e : new Error(String(e));
}

/** Fast-forward runner (journal replay). */
export function fastRunner(k: Kernel, advanceTo: (ns: number) => void): QemuRunner {
  return <T>(q: Qemu, body: KGen<T>, vcpu = false): T => {
    const t = spawnIn(q, body, vcpu);
    k.onExit(t, () => {});
    const deadline = k.now() + 60e9;
    for (;;) {
      const s = k.run();
      if (t.done) break;
      if (s !== RunStatus.DONE && s !== RunStatus.IDLE) throw new Error(`qemu ${q.name}: scheduler stopped (${s})`);
      const d = k.nextDeadline();
      if (d === Infinity || d > deadline) throw new Error(`qemu ${q.name}: task cannot finish`);
      advanceTo(d);
    }
    if (t.error) throw taskError(t);
    return t.exitValue as T;
  };
}

/** Live runner: the task runs on the live loop; resolves when it exits. */
export function liveRunner(k: Kernel, kick: () => void): QemuRunner {
  return <T>(q: Qemu, body: KGen<T>, vcpu = false): Promise<T> => {
    const t = spawnIn(q, body, vcpu);
    const p = new Promise<T>((resolve, reject) => k.onExit(t, (u) => (u.error ? reject(taskError(u)) : resolve(u.exitValue as T))));
    kick();
    return p;
  };
}

function then<T, U>(v: T | Promise<T>, f: (x: T) => U): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** The guests of one host. */
export class GuestSet {
  readonly guests = new Map<string, Guest>();
  /** Names with an operation in flight (start/stop): a second one is refused. */
  private readonly busy = new Set<string>();
  private listeners: Array<(e: GuestEvent) => void> = [];

  constructor(
    readonly env: QemuEnv,
    public runner: QemuRunner,
  ) {}

  onEvent(f: (e: GuestEvent) => void): void {
    this.listeners.push(f);
  }

  private emit(e: GuestEvent): void {
    for (const l of this.listeners) l(e);
  }

  private checkName(name: unknown): string {
    if (typeof name !== 'string' || !GUEST_NAME_RE.test(name)) {
      throw new GuestError(400, `invalid guest name ${JSON.stringify(name)} (1-64 characters: letters, digits, '_', '.', '-'; starting with a letter or digit)`);
    }
    return name;
  }

  private checkMdev(uuid: unknown): string {
    if (typeof uuid !== 'string' || !UUID_RE.test(uuid)) throw new GuestError(400, `invalid mdev UUID ${JSON.stringify(uuid)} (lower-case 8-4-4-4-12 hex)`);
    if (!this.env.sysfs.find(mdevPath(uuid), true)) throw new GuestError(404, `mdev ${uuid} does not exist (no ${mdevPath(uuid)})`);
    return uuid;
  }

  get(name: unknown): Guest {
    const n = this.checkName(name);
    const g = this.guests.get(n);
    if (!g || this.busy.has(n)) throw new GuestError(404, `no guest named '${n}'${this.guests.size ? ` (guests: ${[...this.guests.keys()].sort().join(', ')})` : ''}`);
    return g;
  }

  private locked<T>(name: string, f: () => T | Promise<T>): T | Promise<T> {
    this.busy.add(name);
    let r: T | Promise<T>;
    try {
      r = f();
    } catch (e) {
      this.busy.delete(name);
      throw e;
    }
    if (r instanceof Promise) return r.finally(() => this.busy.delete(name));
    this.busy.delete(name);
    return r;
  }

  /** `qemu-system-s390x -name NAME -device vfio-ap,id=vfio_ap0,sysfsdev=/sys/bus/mdev/devices/UUID` */
  start(name: unknown, mdev: unknown): void | Promise<void> {
    const n = this.checkName(name);
    if (this.guests.has(n) || this.busy.has(n)) throw new GuestError(409, `a guest named '${n}' is already running`);
    const u = this.checkMdev(mdev);
    const q = new Qemu(this.env, { name: n, devices: [{ sysfsdev: mdevPath(u), id: DEVICE_ID }] });
    return this.locked(n, () =>
      then(this.runner(q, q.start()), () => {
        const g: Guest = { name: n, qemu: q, started: Date.now(), tracked: [] };
        for (const d of q.devices) g.tracked.push({ dev: d, req: 0, cfg: 0 });
        this.guests.set(n, g);
        this.emit({ type: 'guest', guest: n, action: 'start', mdev: u });
      }),
    );
  }

  /** quit: devices unrealized, the VM closed. */
  stop(name: unknown): void | Promise<void> {
    const g = this.get(name);
    return this.locked(g.name, () =>
      then(this.runner(g.qemu, g.qemu.quit()), () => {
        this.poll();
        this.guests.delete(g.name);
        this.emit({ type: 'guest', guest: g.name, action: 'stop' });
      }),
    );
  }

  /** device_add vfio-ap,id=vfio_ap0,sysfsdev=...: QEMU's error text on failure. */
  deviceAdd(name: unknown, mdev: unknown): void | Promise<void> {
    const g = this.get(name);
    const u = this.checkMdev(mdev);
    const q = g.qemu;
    return then(this.runner(q, q.device_add({ sysfsdev: mdevPath(u), id: DEVICE_ID })), (err) => {
      if (err !== null) throw new GuestError(422, q.stderr[q.stderr.length - 1] ?? err);
      const d = q.devices.find((x) => x.id === DEVICE_ID);
      if (d) g.tracked.push({ dev: d, req: 0, cfg: 0 });
      this.emit({ type: 'guest', guest: g.name, action: 'device_add', mdev: u });
    });
  }

  /** device_del vfio_ap0 */
  deviceDel(name: unknown): void | Promise<void> {
    const g = this.get(name);
    const q = g.qemu;
    const mdev = q.devices.find((x) => x.id === DEVICE_ID)?.name;
    return then(this.runner(q, q.device_del(DEVICE_ID)), (err) => {
      if (err !== null) throw new GuestError(422, `${q.stderr[q.stderr.length - 1] ?? err} (guest '${g.name}' has no vfio-ap device)`);
      this.poll();
      this.emit({ type: 'guest', guest: g.name, action: 'device_del', ...(mdev ? { mdev } : {}) });
    });
  }

  /** system_reset */
  reset(name: unknown): void | Promise<void> {
    const g = this.get(name);
    return then(this.runner(g.qemu, g.qemu.system_reset()), () => this.emit({ type: 'guest', guest: g.name, action: 'reset' }));
  }

  /** Applies a journaled operation (replay). */
  apply(op: GuestOp): void | Promise<void> {
    switch (op.op) {
      case 'start':
        return this.start(op.name, op.mdev);
      case 'stop':
        return this.stop(op.name);
      case 'device-add':
        return this.deviceAdd(op.name, op.mdev);
      case 'device-del':
        return this.deviceDel(op.name);
      case 'reset':
        return this.reset(op.name);
    }
  }

  /** Emits req/cfg_chg events for notifications QEMU handled since the last poll. */
  poll(): void {
    for (const g of this.guests.values()) {
      for (const t of [...g.tracked]) {
        const d = t.dev;
        if (d.cfg_handled > t.cfg) {
          this.emit({ type: 'guest', guest: g.name, action: 'cfg_chg', mdev: d.name, count: d.cfg_handled - t.cfg, total: d.cfg_handled });
          t.cfg = d.cfg_handled;
        }
        if (d.req_handled > t.req) {
          this.emit({ type: 'guest', guest: g.name, action: 'req', mdev: d.name, count: d.req_handled - t.req, total: d.req_handled });
          t.req = d.req_handled;
        }
        if (!d.realized) g.tracked.splice(g.tracked.indexOf(t), 1);
      }
    }
  }

  summary(g: Guest): GuestSummary {
    const q = g.qemu;
    const d = q.devices[0];
    return {
      name: g.name,
      running: q.running,
      mdev: d?.name ?? null,
      device_id: d?.id ?? null,
      started: new Date(g.started).toISOString(),
      req_handled: d?.req_handled ?? 0,
      cfg_chg_handled: d?.cfg_handled ?? 0,
      ap_devices: q.guest?.devices().length ?? 0,
    };
  }

  list(): GuestSummary[] {
    return [...this.guests.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((g) => this.summary(g));
  }

  /** The guest's view: its CRYCB, TAPQ from vCPU 0 on every APQN in it, its AP bus devices. */
  view(name: unknown): GuestView | Promise<GuestView> {
    const g = this.get(name);
    const q = g.qemu;
    const kvm = q.kvm!;
    const m = kvm_s390_crycb_masks(kvm);
    const apm = maskIds(m.apm);
    const aqm = maskIds(m.aqm);
    const adm = maskIds(m.adm);
    const apqns = apm.flatMap((a) => aqm.map((d) => apqn(a, d)));
    const body = function* (): KGen<TapqView[]> {
      const out: TapqView[] = [];
      for (const a of apqns) {
        const r = yield* guest_tapq(kvm.vcpus[0]!, a);
        const s = r.status;
        const flags = s ? `${s.queueEmpty ? 'E' : ''}${s.repliesWaiting ? 'R' : ''}${s.queueFull ? 'F' : ''}${s.irqEnabled ? 'I' : ''}${s.async ? 'A' : ''}` : '';
        out.push({
          apqn: formatApqn(a),
          cc: r.cc ?? null,
          rc: s ? s.responseCode : null,
          flags,
          ...(r.pgm !== undefined ? { pgm: String(r.pgm) } : {}),
          ...(r.exit !== undefined ? { exit: r.exit } : {}),
        });
      }
      return out;
    };
    return then(this.runner(q, body(), true), (tapq) => {
      const d = q.devices[0];
      return {
        name: g.name,
        mdev: d?.name ?? null,
        crycb: { apm, aqm, adm },
        tapq,
        ap_bus: { devices: q.guest?.devices() ?? [], scans: q.guest?.scans ?? 0 },
        cfg_chg_handled: d?.cfg_handled ?? 0,
        req_handled: d?.req_handled ?? 0,
      };
    });
  }
}
