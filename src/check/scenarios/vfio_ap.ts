// vfio_ap scenarios on the minimal host (2 adapters x 4 domains): the real driver with
// its VFIO/mdev/KVM/QEMU surroundings, booted with env.boot() so a mutant's pieces
// (component 'vfio_ap', 'vfio' or 'kvm') reach production code.
//
// The world (every scenario): apmask -0 and aqmask -0,-1,-2 give vfio_ap every queue
// of adapter 0 and 01.0000-01.0002 (01.0003 stays with zcrypt). mdev A holds adapter
// 0 x domains 0,1 and control domain 0; mdev B holds adapter 1 x domains 0,1. Guest 1
// (QEMU, no guest AP bus) runs with A; B is used by a second QEMU guest, by a bare
// VFIO user (a VM of its own, or guest 1's VM), or by nobody, as the scenario says.
// Operations are the lock-taking ones of vfio-ap-driver.md 7.3; the pair scenarios
// are the DPOR-proven set.
import { E, type KGen } from '../../kernel/index.js';
import type { Host } from '../../host/index.js';
import {
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_AP_CFG_CHG_IRQ_INDEX,
  VfioProcess,
  eventfd_file,
  sys_ioctl,
  task_set_files,
} from '../../vfio/index.js';
import { guest_aqic, kvm_create_vm, kvm_s390_crycb_masks, kvm_vm_release, type Kvm } from '../../kvm/index.js';
import { Qemu } from '../../qemu/index.js';
import { AP_RESPONSE, apqn, formatApqn, maskAnd, maskIds, testBit } from '../../hw/index.js';
import { vfio_ap_check_invariants, type MatrixDev } from '../../vfio_ap/index.js';
import { VFIO_AP_LOCK_ORDER } from '../../vfio_ap/lock_order.js';
import type { Scenario, ScenarioEnv, TaskList, TaskResult, World } from '../scenario.js';

export const VA_MATRIX = '/sys/devices/vfio_ap/matrix';
const TYPE = `${VA_MATRIX}/mdev_supported_types/vfio_ap-passthrough`;
export const UUID_A = '62177883-f1bb-47f0-914d-32a22e3a8804';
export const UUID_B = '4b3a8c6e-9d0f-4a51-8b2e-1f6c7d8e9a0b';
export const UUID_C = '0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9';
const A = `${VA_MATRIX}/${UUID_A}`;
const B = `${VA_MATRIX}/${UUID_B}`;
const NIB = 0x10000;

// ---------------------------------------------------------------- a bare VFIO user

/**
 * A process using VFIO directly (QEMU's steps one by one), for open/close races. Its
 * close() of a device that is not open is a no-op (0), so that scenario operations
 * can close unconditionally.
 */
export class BareVfioUser extends VfioProcess {
  constructor(readonly h: Host) {
    super({ k: h.k, vfio: h.vfio!, sysfs: h.sysfs });
  }

  override *close(): KGen<number> {
    if (this.device_fd < 0) return 0;
    return yield* super.close();
  }
}

// ---------------------------------------------------------------- the world

/** Who uses mdev B during the explored phase. */
export type UserB =
  /** nobody */
  | 'none'
  /** a second QEMU guest (its own VM) */
  | 'qemu'
  /** a bare VFIO user with its own VM: group attached, device not open */
  | 'user'
  /** like 'user', device open (attached) */
  | 'user-open'
  /** a bare VFIO user on guest 1's VM (group attached, not open): a second mdev for one VM */
  | 'user-same-vm';

export interface VfioApSetup {
  /** Guest 1 on mdev A (default true). */
  guestA?: boolean;
  userB?: UserB;
  /** Control domain 3 also assigned to A (hot-unplug of lost control domains). */
  cdom3?: boolean;
}

export interface VaWorld extends World {
  readonly host: Host;
  readonly md: MatrixDev;
  /** Guest 1 (mdev A). */
  readonly q1: Qemu | null;
  /** Second QEMU guest (mdev B) when userB is 'qemu'. */
  readonly q2: Qemu | null;
  /** The bare VFIO user of B and its VM. */
  readonly user: BareVfioUser | null;
  readonly vmB: Kvm | null;
  /** An eventfd in guest 1's process for SET_IRQS. */
  readonly efd: number;
  /** UUIDs whose remove write returned 0 (must be gone from mdev_list). */
  readonly removed: Set<string>;
  /** Results of guest AQICs on linked APQNs while the mdev was known attached throughout. */
  readonly aqicRc: number[];
  /** Whether guest 1's mdev may have been detached in this scenario. */
  readonly detachesA: boolean;
  /** The host's AP configuration (QCI masks) when the explored phase began. */
  readonly cfg0: string;
  /** Mdev A's ap_config when the explored phase began. */
  readonly apConfigA: string;
}

/** Runs body to completion in a setup task (first-come scheduling). */
function sync<T>(h: Host, body: KGen<T>, what: string): T {
  const t = h.k.spawn('setup', body);
  h.k.onExit(t, () => {});
  h.k.runUntilExit(t);
  if (t.error) throw t.error;
  if (!t.done) throw new Error(`scenario setup: ${what} did not finish`);
  return t.exitValue as T;
}

function launch(h: Host, uuid: string, name: string): Qemu {
  const q = new Qemu(h.qemuEnv(), { name, guest: false, devices: [{ sysfsdev: `/sys/bus/mdev/devices/${uuid}`, id: 'hostdev0' }] });
  q.run(q.start(), `${name} start`);
  return q;
}

export function bootVfioAp(env: ScenarioEnv, o: VfioApSetup = {}, detachesA = false): VaWorld {
  const h = env.boot();
  const md = h.vfio_ap!.md;
  h.write('/sys/bus/ap/apmask', '-0');
  h.write('/sys/bus/ap/aqmask', '-0,-1,-2');
  h.write(`${TYPE}/create`, UUID_A);
  h.write(`${TYPE}/create`, UUID_B);
  h.write(`${A}/assign_adapter`, '0');
  for (const d of ['0', '1']) h.write(`${A}/assign_domain`, d);
  h.write(`${A}/assign_control_domain`, '0');
  if (o.cdom3) h.write(`${A}/assign_control_domain`, '3');
  h.write(`${B}/assign_adapter`, '1');
  for (const d of ['0', '1']) h.write(`${B}/assign_domain`, d);
  const q1 = o.guestA === false ? null : launch(h, UUID_A, 'guest1');
  let q2: Qemu | null = null;
  let user: BareVfioUser | null = null;
  let vmB: Kvm | null = null;
  const ub = o.userB ?? 'none';
  if (ub === 'qemu') q2 = launch(h, UUID_B, 'guest2');
  else if (ub !== 'none') {
    user = new BareVfioUser(h);
    vmB = ub === 'user-same-vm' ? q1!.kvm! : kvm_create_vm(h.kvm, { name: 'vmB' });
    const rc = sync(h, user.setup(UUID_B, vmB), 'VFIO user setup');
    if (rc) throw new Error(`scenario setup: VFIO user setup: ${rc}`);
    if (ub === 'user-open' && sync(h, user.open(UUID_B), 'VFIO open') < 0) throw new Error('scenario setup: VFIO open failed');
  }
  // Let QEMU's machine reset (queue resets) and interrupt set-up finish.
  h.advance(100_000_000);
  let efd = -1;
  if (q1) efd = q1.files.install(eventfd_file('cfg'));
  return { k: h.k, host: h, md, q1, q2, user, vmB, efd, removed: new Set(), aqicRc: [], detachesA, cfg0: hostConfig(h), apConfigA: h.read(`${A}/ap_config`) };
}

/** The host's QCI masks as text (what an HMC change alters). */
function hostConfig(h: Host): string {
  const c = h.machine.configMasks();
  return [c.apm, c.aqm, c.adm].map((m) => maskIds(m).join(',')).join('/');
}

// ---------------------------------------------------------------- operations

/** A driver operation a task runs; returns 0 or -errno (or an RC for guest instructions). */
export interface VaOp {
  readonly name: string;
  run(w: VaWorld): KGen<number>;
  /** Results that are always legal (default [0]). */
  readonly legal?: readonly number[];
  /**
   * For an operation that is not idempotent, what the loser of two concurrent
   * instances gets (creating an existing mdev: EEXIST). With two instances, each may
   * return these, but at least one must return a `legal` result (exactly one wins).
   */
  readonly dupLegal?: readonly number[];
  /** Results also legal when the host's AP configuration changed during the execution. */
  readonly legalIfHostChanged?: readonly number[];
  /** Whether it may detach guest 1 from A. */
  readonly detachesA?: boolean;
}

function wr(path: string, data: string): (w: VaWorld) => KGen<number> {
  return function* (w) {
    const r = yield* w.host.sysfs.write_gen(w.k, path, data);
    return r.ok ? 0 : -r.errno;
  };
}

function rd(path: string): (w: VaWorld) => KGen<number> {
  return function* (w) {
    const r = yield* w.host.sysfs.read_gen(w.k, path);
    return r.ok ? 0 : -r.errno;
  };
}

/** A mask write: EBUSY only if the APQNs it would reserve really are assigned (checked at the end). */
function maskWrite(which: 'apmask' | 'aqmask', data: string): (w: VaWorld) => KGen<number> {
  return wr(`/sys/bus/ap/${which}`, data);
}

function* ioctlA(w: VaWorld, cmd: number, arg: unknown): KGen<number> {
  const q = w.q1!;
  task_set_files(w.k.current!, q.files);
  const d = q.devices[0];
  if (!d) return -E.ENODEV!;
  return yield* sys_ioctl(w.k, q.files, d.device_fd, cmd, arg);
}

function* aqic(w: VaWorld, ir: boolean): KGen<number> {
  const vcpu = w.q1!.kvm!.vcpus[0]!;
  const r = yield* guest_aqic(vcpu, apqn(0, 0), { ir, isc: 3 }, NIB);
  const rc = r.status?.responseCode ?? -1;
  w.aqicRc.push(rc);
  return rc;
}

/**
 * An HMC/SE change: the machine is shared state, so the change happens after a
 * sched_point (a task's first step counts as local for DPOR). What it triggers (the
 * AP bus's config-change work) is spawned by it and so ordered after it.
 */
function* hmc(w: VaWorld, f: () => void): KGen<number> {
  yield w.k.sched_point('hmc change');
  f();
  return 0;
}

export const vaOps: readonly VaOp[] = [
  { name: 'assign-dom2', run: wr(`${A}/assign_domain`, '2') },
  { name: 'assign-dom3', run: wr(`${A}/assign_domain`, '3'), legal: [0, -E.EADDRNOTAVAIL!] },
  { name: 'unassign-dom1', run: wr(`${A}/unassign_domain`, '1') },
  { name: 'unassign-adapter-B', run: wr(`${B}/unassign_adapter`, '1') },
  { name: 'assign-cdom3', run: wr(`${A}/assign_control_domain`, '3') },
  { name: 'unassign-cdom0', run: wr(`${A}/unassign_control_domain`, '0') },
  {
    name: 'ap_config',
    // As mdevctl starts a device: its stored configuration (A's when the explored phase
    // began) written in one go, whatever happened to A meanwhile.
    *run(w) {
      const r = yield* w.host.sysfs.write_gen(w.k, `${A}/ap_config`, w.apConfigA);
      return r.ok ? 0 : -r.errno;
    },
  },
  { name: 'read-matrix', run: rd(`${A}/matrix`) },
  { name: 'read-guest_matrix', run: rd(`${A}/guest_matrix`) },
  { name: 'read-status', run: rd('/sys/devices/ap/card00/00.0000/status') },
  { name: 'create-C', run: wr(`${TYPE}/create`, UUID_C), dupLegal: [-E.EEXIST!] },
  {
    name: 'remove-B',
    // The second remove finds the attribute gone (ENOENT at open) or being removed (ENODEV).
    dupLegal: [-E.ENOENT!, -E.ENODEV!],
    *run(w) {
      const rc = yield* wr(`${B}/remove`, '1')(w);
      if (rc === 0) w.removed.add(UUID_B);
      return rc;
    },
  },
  {
    name: 'remove-A',
    detachesA: true,
    *run(w) {
      const rc = yield* wr(`${A}/remove`, '1')(w);
      if (rc === 0) w.removed.add(UUID_A);
      return rc;
    },
  },
  { name: 'open-B', run: (w) => openB(w), legal: [0, -E.EINVAL!, -E.EPERM!] },
  { name: 'close-B', run: (w) => w.user!.close() },
  { name: 'vm-release-B', *run(w) { yield* kvm_vm_release(w.vmB!); return 0; } },
  { name: 'device_del-A', detachesA: true, *run(w) { const e = yield* w.q1!.device_del('hostdev0'); return e === null ? 0 : -E.ENODEV!; } },
  { name: 'qemu-quit-A', detachesA: true, *run(w) { yield* w.q1!.quit(); return 0; } },
  // A queue that leaves the host configuration ends its reset with a non-zero status: EIO (spec 6.1, #37).
  { name: 'reset', run: (w) => ioctlA(w, VFIO_DEVICE_RESET, undefined), legal: [0, -E.ENODEV!, -E.EBADF!], legalIfHostChanged: [-E.EIO!] },
  {
    name: 'set_irqs',
    run: (w) => ioctlA(w, VFIO_DEVICE_SET_IRQS, { argsz: 24, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: VFIO_AP_CFG_CHG_IRQ_INDEX, start: 0, count: 1, data: [w.efd] }),
    legal: [0, -E.ENODEV!, -E.EBADF!],
  },
  { name: 'aqic', run: (w) => aqic(w, true), legal: [AP_RESPONSE.NORMAL, AP_RESPONSE.Q_NOT_AVAIL] },
  {
    name: 'aqic2',
    *run(w) {
      yield* aqic(w, true);
      return yield* aqic(w, false);
    },
    legal: [AP_RESPONSE.NORMAL, AP_RESPONSE.Q_NOT_AVAIL],
  },
  {
    name: 'rebind-00.0001',
    *run(w) {
      const u = yield* wr('/sys/bus/ap/drivers/vfio_ap/unbind', '00.0001')(w);
      if (u) return u;
      return yield* wr('/sys/bus/ap/drivers/vfio_ap/bind', '00.0001')(w);
    },
    legal: [0, -E.ENODEV!],
  },
  { name: 'unbind-01.0002', run: wr('/sys/bus/ap/drivers/vfio_ap/unbind', '01.0002'), legal: [0, -E.ENODEV!] },
  { name: 'apmask+0', run: maskWrite('apmask', '+0'), legal: [0] },
  { name: 'aqmask+2', run: maskWrite('aqmask', '+2'), legal: [0] },
  { name: 'aqmask-3', run: maskWrite('aqmask', '-3'), legal: [0] },
  { name: 'hmc-rm-dom1', run: (w) => hmc(w, () => w.host.machine.hmc.removeUsageDomain(1)) },
  { name: 'hmc-rm-cdom3', run: (w) => hmc(w, () => w.host.machine.hmc.removeControlDomain(3)) },
  { name: 'hmc-rm-adapter1', run: (w) => hmc(w, () => w.host.machine.hmc.removeAdapter(1)) },
  {
    name: 'hmc-readd-dom2',
    *run(w) {
      yield* hmc(w, () => w.host.machine.hmc.removeUsageDomain(2));
      return yield* hmc(w, () => w.host.machine.hmc.addUsageDomain(2));
    },
  },
];

function* openB(w: VaWorld): KGen<number> {
  const fd = yield* w.user!.open(UUID_B);
  return fd >= 0 ? 0 : fd;
}

export function vaOp(name: string): VaOp {
  const o = vaOps.find((x) => x.name === name);
  if (!o) throw new Error(`no vfio_ap operation "${name}"`);
  return o;
}

// ---------------------------------------------------------------- properties

/** A mask write may fail with EBUSY only if an mdev holds an APQN it would reserve. */
function maskConflicts(w: VaWorld, op: string): boolean {
  const bus = w.host.ap;
  const apm = new Uint8Array(bus.perms.apm);
  const aqm = new Uint8Array(bus.perms.aqm);
  const m = /^(apmask|aqmask)\+(\d+)$/.exec(op);
  if (!m) return false;
  const id = Number(m[2]);
  const target = m[1] === 'apmask' ? apm : aqm;
  target[id >> 3] = target[id >> 3]! | (0x80 >> (id & 7));
  return w.md.mdev_list.some((x) => maskIds(maskAnd(x.matrix.apm, apm)).length > 0 && maskIds(maskAnd(x.matrix.aqm, aqm)).length > 0);
}

/** The APQNs a VM's CRYCB gives its guest. */
function crycbApqns(kvm: Kvm): Set<string> {
  const c = kvm_s390_crycb_masks(kvm);
  const out = new Set<string>();
  for (const a of maskIds(c.apm)) for (const d of maskIds(c.aqm)) out.add(formatApqn(apqn(a, d)));
  return out;
}

/** A VM still alive with its fd open (freed objects must not be touched by the check). */
function liveVm(w: VaWorld, kvm: Kvm | null | undefined): Kvm | null {
  return kvm && w.k.lifetime.isLive(kvm) && kvm.vm_fd_open ? kvm : null;
}

/** Properties every vfio_ap scenario checks after a completed execution. */
export function vaCheck(w: VaWorld, results: ReadonlyMap<string, TaskResult>, ops: readonly VaOp[], names: readonly string[]): string[] {
  const out = vfio_ap_check_invariants(w.md).map((v) => `${v.invariant}: ${v.detail}`);
  ops.forEach((op, i) => {
    const r = results.get(names[i]!);
    const v = r?.value as number;
    const twins = ops.filter((x) => x === op).length > 1;
    if (twins && op.dupLegal?.includes(v)) {
      // The loser of a race between two instances; someone must have won.
      const won = ops.some((x, j) => x === op && (op.legal ?? [0]).includes(results.get(names[j]!)?.value as number));
      if (!won) out.push(`${names[i]}: both instances of ${op.name} failed (${v})`);
      return;
    }
    if (v === -E.EBUSY! && /remove/.test(op.name)) out.push(`${names[i]}: remove failed with EBUSY`);
    else if (v === -E.EBUSY! && /mask\+/.test(op.name)) {
      if (!maskConflicts(w, op.name)) out.push(`${names[i]}: a mask write that conflicts with nothing failed with EBUSY`);
    } else if (!(op.legal ?? [0]).includes(v) && !(op.legalIfHostChanged?.includes(v) && hostConfig(w.host) !== w.cfg0))
      out.push(`${names[i]} (${op.name}) returned ${v}`);
  });
  for (const u of w.removed) if (w.md.mdev_list.some((m) => m.uuid === u)) out.push(`matrix_mdev ${u} is still on mdev_list after its remove returned`);
  // No guest sees an APQN of another guest.
  const vms = [liveVm(w, w.q1?.kvm), liveVm(w, w.q2?.kvm), w.vmB !== w.q1?.kvm ? liveVm(w, w.vmB) : null].filter((x): x is Kvm => x !== null);
  for (let i = 0; i < vms.length; i++)
    for (let j = i + 1; j < vms.length; j++) {
      const b = crycbApqns(vms[j]!);
      for (const q of crycbApqns(vms[i]!)) if (b.has(q)) out.push(`guests ${vms[i]!.name} and ${vms[j]!.name} both see APQN ${q}`);
    }
  // Guest AQIC on a linked APQN (00.0000 of A) never answers RC 01 while A is attached.
  if (!w.detachesA && w.q1 && w.aqicRc.includes(AP_RESPONSE.Q_NOT_AVAIL)) out.push('guest AQIC on linked APQN 00.0000 answered RC 01 while its mdev was attached');
  // A lost control domain is unplugged from the guest.
  const g1 = liveVm(w, w.q1?.kvm);
  if (g1) {
    const adm = kvm_s390_crycb_masks(g1).adm;
    for (const d of maskIds(adm)) if (!testBit(w.host.machine.configMasks().adm, d)) out.push(`guest1 still has control domain ${d} the host lost`);
  }
  return out;
}

// ---------------------------------------------------------------- scenarios

interface VaOptions extends Partial<Scenario<VaWorld>> {
  setupOpts?: VfioApSetup;
}

/** Tasks running `ops` concurrently (named by op, suffixed when repeated). */
export function vaScenario(name: string, description: string, opNames: readonly string[], o: VaOptions = {}): Scenario<VaWorld> {
  const ops = opNames.map(vaOp);
  const names = ops.map((op, i) => (ops.findIndex((x) => x.name === op.name) === i ? op.name : `${op.name}#${i}`));
  const detaches = ops.some((x) => x.detachesA);
  const { setupOpts, ...extra } = o;
  return {
    name,
    description,
    profile: 'minimal',
    tags: ['vfio_ap'],
    lockOrder: VFIO_AP_LOCK_ORDER,
    executions: 60,
    leakCheck: false,
    setup: (env) => bootVfioAp(env, setupOpts, detaches),
    tasks: (w): TaskList => ops.map((op, i) => [names[i]!, op.run(w)] as const),
    check: (w, results) => vaCheck(w, results, ops, names),
    ...extra,
  };
}

export function vfioApScenarios(): Scenario<VaWorld>[] {
  const s = vaScenario;
  const list: Scenario<VaWorld>[] = [
    // Seed situations.
    s('vfio-ap:assign-vs-apmask', 'seed 003: assigning domain 3 to A races an apmask write reserving adapter 0 (00.0003 either way: exactly one wins)', ['assign-dom3', 'apmask+0'], { exhaustive: true, executions: 100 }),
    s('vfio-ap:unassign-vs-apmask', 'seed 003 v18: unassigning a domain (guests_lock) races an apmask write that conflicts with nothing: it must succeed', ['unassign-dom1', 'apmask+0'], { exhaustive: true, executions: 100 }),
    s('vfio-ap:status-vs-aqmask', 'a queue status read (guests_lock) races an aqmask write that conflicts with nothing (reprobe of 01.0002)', ['read-status', 'aqmask+2'], { exhaustive: true, executions: 100 }),
    s('vfio-ap:pqap-vs-close-vs-remove', 'seed 004: guest PQAP(AQIC) from a vCPU, QEMU device_del (close/detach) and mdev remove of the same mdev', ['aqic2', 'device_del-A', 'remove-A'], { executions: 100 }),
    s('vfio-ap:vm-destroy-vs-close', 'seed 001: the VM fd closed concurrently with the device close of a bare VFIO user', ['close-B', 'vm-release-B'], { exhaustive: true, executions: 100, setupOpts: { guestA: false, userB: 'user-open' } }),
    s('vfio-ap:vm-destroy-vs-open', 'seed 000: the VM fd closed concurrently with the device open of a bare VFIO user', ['open-B', 'vm-release-B'], { exhaustive: true, executions: 100, setupOpts: { guestA: false, userB: 'user' } }),
    s('vfio-ap:probe-remove-vs-hotplug-vs-cfgchg', 'queue remove + probe (unbind/bind 00.0001) races a hot plug (assign domain 2) and a host config change (domain 2 removed and re-added)', ['rebind-00.0001', 'assign-dom2', 'hmc-readd-dom2'], { executions: 80 }),
    s('vfio-ap:remove-while-in-use', 'remove mdev B while a second guest has it open (VFIO request path): never EBUSY, gone afterwards; guest 1 keeps its APQNs', ['remove-B', 'read-matrix'], { executions: 40, setupOpts: { userB: 'qemu' } }),
    // The rest of 7.3.
    s('vfio-ap:second-open-same-vm', 'a second mdev (B) opened for guest 1\'s VM is rejected while guest 1 issues PQAP(AQIC) on its linked APQN', ['open-B', 'aqic2'], { exhaustive: true, executions: 60, setupOpts: { userB: 'user-same-vm' } }),
    s('vfio-ap:open-vs-pqap', 'a bare VFIO user opens B (attach to its own VM) while guest 1 issues PQAP(AQIC)', ['open-B', 'aqic2'], { exhaustive: true, executions: 60, setupOpts: { userB: 'user' } }),
    s('vfio-ap:lost-cdom-vs-read', 'the host loses control domain 3 (assigned to attached A): on_config_changed races a guest_matrix read', ['hmc-rm-cdom3', 'read-guest_matrix'], { exhaustive: true, executions: 40, setupOpts: { cdom3: true } }),
    s('vfio-ap:cfgchg-vs-assign-vs-aqic', 'the host loses usage domain 1 while A gets domain 2 hot plugged and the guest issues AQIC', ['hmc-rm-dom1', 'assign-dom2', 'aqic'], { executions: 60 }),
    s('vfio-ap:adapter-lost-vs-unassign', 'the host loses adapter 1 (B\'s, guest 2 attached) while B\'s adapter is unassigned', ['hmc-rm-adapter1', 'unassign-adapter-B'], { exhaustive: true, executions: 40, setupOpts: { userB: 'qemu' } }),
    s('vfio-ap:ioctls-vs-cdoms', 'VFIO_DEVICE_RESET and SET_IRQS on A race control domain (un)assignment and an ap_config write', ['reset', 'set_irqs', 'assign-cdom3', 'unassign-cdom0', 'ap_config'], { executions: 60 }),
    s('vfio-ap:create-vs-quit-vs-unbind', 'mdev create, guest 1 quits (close + VM destroy), 01.0002 unbound and 01.0003 freed (probe)', ['create-C', 'qemu-quit-A', 'unbind-01.0002', 'aqmask-3'], { executions: 60 }),
    s('vfio-ap:reads-vs-guests', 'matrix/guest_matrix/status reads race guest 2 (on B) and guest 1 both doing work: a reset, AQIC, an assignment', ['read-matrix', 'read-guest_matrix', 'read-status', 'reset', 'aqic'], { executions: 60, setupOpts: { userB: 'qemu' } }),
  ];
  // More DPOR-proven pairs of lock-taking operations of 7.3 that the matrix below does
  // not have (seeds 000, 001 and 003 v18 are the seed scenarios above).
  const pairs: Array<[string, string, VfioApSetup?]> = [
    ['read-matrix', 'unassign-cdom0'],
    ['read-guest_matrix', 'assign-cdom3'],
    ['set_irqs', 'unassign-cdom0'],
    ['read-status', 'read-matrix'],
  ];
  for (const [a, b, so] of pairs)
    list.push(
      s(`vfio-ap-pair:${a}+${b}`, `vfio_ap pair: ${a} concurrently with ${b}`, [a, b], {
        tags: ['vfio_ap', 'pair'],
        exhaustive: true,
        executions: 40,
        ...(so ? { setupOpts: so } : {}),
      }),
    );
  // Every pair (an operation with itself included) of one operation per lock-taking
  // row of 7.3 on the default world: 104 pairs (not aqic with itself: one vCPU), all
  // proven by DPOR; src/check/README.md lists every count.
  const names = new Set(list.map((x) => x.name));
  for (let i = 0; i < PAIR_OPS.length; i++)
    for (let j = i; j < PAIR_OPS.length; j++) {
      const a = PAIR_OPS[i]!;
      const b = PAIR_OPS[j]!;
      const name = `vfio-ap-pair:${a}+${b}`;
      if (names.has(name) || names.has(`vfio-ap-pair:${b}+${a}`)) continue;
      // Guest 1 has one vCPU: it cannot execute two PQAPs at once.
      if (a === 'aqic' && b === 'aqic') continue;
      list.push(s(name, `vfio_ap pair: ${a} concurrently with ${b}`, [a, b], { tags: ['vfio_ap', 'pair'], executions: 40, exhaustive: true }));
    }
  return list;
}

/**
 * One operation per lock-taking row of vfio-ap-driver.md 7.3: assign (guests_lock ->
 * kvm->lock -> mdevs_lock, ap_attr_mutex first), unassign, control domain assign, an
 * ap_config write, matrix read (mdevs_lock), queue status read (guests_lock,
 * mdevs_lock), mdev probe (create) and remove, an ioctl (reset), PQAP (AQIC under the
 * hook rwsem), queue remove (unbind), queue probe (aqmask -3), in_use (apmask +0
 * conflicts with nothing, so it rebinds) and on_config_changed (the host loses
 * domain 1). Open/close/VM release and the VFIO request path have their own pairs.
 */
const PAIR_OPS = ['assign-dom2', 'unassign-dom1', 'assign-cdom3', 'ap_config', 'read-matrix', 'read-status', 'create-C', 'remove-B', 'reset', 'aqic', 'unbind-01.0002', 'aqmask-3', 'apmask+0', 'hmc-rm-dom1'];

