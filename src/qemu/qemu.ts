// A QEMU process (qemu-system-s390x) running one KVM guest: the VM and its vCPU threads, the
// ap-bridge with its ap-bus (at most one vfio-ap device), the vfio-ap device (hw/vfio/ap.c):
// realize/unrealize through the VFIO container/group/device files, the REQ and CFG_CHG eventfd
// notifiers, system reset → VFIO_DEVICE_RESET, and the channel-subsystem side of an AP
// configuration change (CRW + CHSC SEI with an NT0 block rs 5 / cc 3).
//
// Threads: the main loop runs as tasks named "qemu-system-s390x" (the runtime's comm keeps 15
// characters: "qemu-system-s39"), guest execution as "CPU <n>/KVM". Tasks are spawned per
// activity (a monitor command, an eventfd handler, a guest AP bus scan) rather than kept alive
// forever, so that an idle guest does not look like a blocked task to the scheduler.
import { E, strerror, type KGen, type Kernel, type Task } from '../kernel/index.js';
import type { Sysfs } from '../sysfs/index.js';
import { runInTask } from '../sysfs/index.js';
import { kvm_create_vm, kvm_vfio_file_add, kvm_vfio_file_del, kvm_vm_release, type Kvm, type KvmCpuModel, type KvmHost } from '../kvm/index.js';
import type { KvmMemoryRegion } from '../kvm/memslot.js';
import {
  Files,
  VFIO_AP_CFG_CHG_IRQ_INDEX,
  VFIO_AP_REQ_IRQ_INDEX,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_AP,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_INFO_MINSZ,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IRQ_INFO_MINSZ,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_MINSZ,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  eventfd_file,
  eventfd_read,
  sys_close,
  sys_ioctl,
  task_set_files,
  vfio_file_set_kvm,
  vfio_open,
  type EventFdCtx,
  type KFile,
  type Vfio,
  type VfioDeviceInfo,
  type VfioGroupStatus,
  type VfioIrqInfo,
} from '../vfio/index.js';
import { GuestApBus, type GuestApBusOptions } from './guest_ap.js';

/** What a QEMU process needs from the host it runs on. */
export interface QemuEnv {
  readonly k: Kernel;
  readonly kvm: KvmHost;
  readonly vfio: Vfio;
  readonly sysfs: Sysfs;
}

/** `-device vfio-ap,sysfsdev=<path>[,id=<id>]` */
export interface VfioApDeviceOptions {
  sysfsdev: string;
  id?: string;
}

export interface QemuOptions {
  /** -name */
  name?: string;
  /** -smp (default 2) */
  smp?: number;
  /** -cpu <model>,ap=on,apqci=on,apft=on,apqi=on (features default to the host's). */
  cpu?: KvmCpuModel;
  /** -m as memory slots (default 1 GiB at 0). */
  memory?: KvmMemoryRegion[];
  /** Cold-plugged vfio-ap devices (-device vfio-ap,...). */
  devices?: VfioApDeviceOptions[];
  /** The guest kernel's AP bus; false for a guest that never looks. */
  guest?: GuestApBusOptions | false;
}

/** QEMU refused something: the message as QEMU prints it. */
export class QemuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QemuError';
  }
}

/** TYPE_VFIO_AP_DEVICE */
export class VfioApDevice {
  /** vdev.name: basename of the resolved sysfsdev (the mdev UUID). */
  name = '';
  groupid = -1;
  device_fd = -1;
  group_fd = -1;
  container_fd = -1;
  group_file: KFile | null = null;
  req_fd = -1;
  cfg_fd = -1;
  req_notifier: EventFdCtx | null = null;
  cfg_notifier: EventFdCtx | null = null;
  realized = false;
  /** apsim: REQ / CFG_CHG notifications handled. */
  req_handled = 0;
  cfg_handled = 0;
  constructor(readonly opts: VfioApDeviceOptions) {}
  get id(): string | undefined {
    return this.opts.id;
  }
}

/** CHSC "store event information" response (NT0 for AP), or "no event information stored". */
export interface ChscSeiResult {
  /** 0x0001 event stored, 0x0005 none. */
  readonly response_code: number;
  readonly length?: number;
  readonly flags?: number;
  readonly nt?: number;
  readonly rs?: number;
  readonly cc?: number;
}

/** CHSC_SEI_NT0: reporting source AP, content code "AP configuration change". */
export const CHSC_SEI_RS_AP = 5;
export const CHSC_SEI_CC_AP_CFG_CHG = 3;
const CHSC_SEI_NT0_RES_LEN = 12;
const CHSC_SEI_FLAG_PENDING = 0x80;

/** A qemu-system-s390x process. */
export class Qemu {
  readonly k: Kernel;
  readonly name: string;
  readonly files: Files;
  kvm: Kvm | null = null;
  running = false;
  /** The ap-bridge exists (CPU model with `ap`); its ap-bus takes at most one device. */
  apBus = false;
  readonly devices: VfioApDevice[] = [];
  readonly guest: GuestApBus | null;
  /** cfg_chg_events (QTAILQ under cfg_chg_events_lock) */
  readonly cfgChgEvents: number[] = [];
  /** Channel report words generated (css_generate_css_crws). */
  crws = 0;
  /** error_report / warn_report lines, as on stderr. */
  readonly stderr: string[] = [];
  /** Every task this process ran (main-loop handlers, vCPU threads). */
  readonly tasks: Task[] = [];
  private cfgSeq = 0;

  constructor(
    readonly env: QemuEnv,
    readonly opts: QemuOptions = {},
  ) {
    this.k = env.k;
    this.name = opts.name ?? `guest${env.kvm.qemuSeq++}`;
    this.files = new Files(`qemu-system-s390x ${this.name}`);
    this.guest = opts.guest === false ? null : new GuestApBus(this, opts.guest ?? {});
  }

  // ------------------------------------------------------------ threads

  /** Runs body on a main-loop thread ("qemu-system-s390x"). */
  spawnMain<T>(body: KGen<T>): Task {
    const t = this.k.spawn('qemu-system-s390x', body);
    task_set_files(t, this.files);
    this.tasks.push(t);
    return t;
  }

  /** Runs body on vCPU n's thread ("CPU n/KVM"). */
  spawnVcpu<T>(n: number, body: KGen<T>): Task {
    const t = this.k.spawn(`CPU ${n}/KVM`, body);
    task_set_files(t, this.files);
    this.tasks.push(t);
    return t;
  }

  /** Runs body in a main-loop task to completion (synchronous callers: tests, the CLI). */
  run<T>(body: KGen<T>, what = 'qemu'): T {
    const t = this.spawnMain(body);
    this.k.onExit(t, () => {});
    this.k.runUntilExit(t);
    if (t.error) throw t.error.cause instanceof QemuError ? t.error.cause : t.error;
    if (!t.done) throw new QemuError(`${what} did not complete: ${this.k.status}`);
    return t.exitValue as T;
  }

  private error_report(msg: string): void {
    this.stderr.push(`qemu-system-s390x: ${msg}`);
  }

  private warn_report(msg: string): void {
    this.stderr.push(`qemu-system-s390x: warning: ${msg}`);
  }

  // ------------------------------------------------------------ machine

  /**
   * Machine init and start: KVM_CREATE_VM with the vCPUs, the ap-bridge when the CPU model has
   * `ap`, cold-plugged devices (an error aborts start-up: QemuError), then the guest boots.
   */
  *start(): KGen<void> {
    const k = this.k;
    yield* k.fn('qemu main', (function* (this: Qemu): KGen<void> {
      const cpu = this.opts.cpu ?? {};
      this.kvm = kvm_create_vm(this.env.kvm, { name: this.name, vcpus: this.opts.smp ?? 2, cpu, ...(this.opts.memory ? { memory: this.opts.memory } : {}) });
      this.apBus = (cpu.ap ?? true) && this.env.kvm.ap_instructions_available();
      for (const d of this.opts.devices ?? []) {
        const err: string | null = yield* this.realize(new VfioApDevice(d));
        if (err) {
          this.error_report(`-device ${deviceArg(d)}: ${err}`);
          yield* this.teardown();
          throw new QemuError(this.stderr[this.stderr.length - 1]!);
        }
      }
      this.running = true;
      this.guest?.start();
    }).call(this));
  }

  /** Synchronous start(); throws QemuError with QEMU's message. */
  static launch(env: QemuEnv, opts: QemuOptions = {}): Qemu {
    const q = new Qemu(env, opts);
    q.run(q.start(), 'qemu start');
    return q;
  }

  /** HMP/QMP device_add: null on success, else the error message. */
  *device_add(d: VfioApDeviceOptions): KGen<string | null> {
    const err: string | null = yield* this.k.fn('qmp_device_add', this.realize(new VfioApDevice(d)));
    if (err) this.error_report(err);
    return err;
  }

  /** HMP/QMP device_del: the ap-bridge unplugs at once (no guest handshake). */
  *device_del(id: string): KGen<string | null> {
    const d = this.devices.find((x) => x.id === id);
    if (!d) {
      const err = `Device '${id}' not found`;
      this.error_report(err);
      return err;
    }
    yield* this.k.fn('qdev_unplug', this.unrealize(d));
    return null;
  }

  /** system_reset: every device's reset (vfio-ap: VFIO_DEVICE_RESET), then the guest reboots. */
  *system_reset(): KGen<void> {
    for (const d of this.devices) {
      const r: number = yield* sys_ioctl(this.k, this.files, d.device_fd, VFIO_DEVICE_RESET, undefined);
      if (r < 0) this.error_report(`vfio_ap_reset: failed to reset ${d.name} device: ${strerror(-r)}`);
    }
    if (this.guest) {
      this.guest.stop();
      this.guest.queues.clear();
      this.guest.cards.clear();
      this.guest.start();
    }
  }

  /** quit / SIGTERM: devices unrealized, then the VM fd (userspace's kvm reference) closed. */
  *quit(): KGen<void> {
    yield* this.k.fn('qemu_cleanup', this.teardown());
  }

  private *teardown(): KGen<void> {
    yield this.k.sched_point_on(this, 'qemu_cleanup');
    this.running = false;
    this.guest?.stop();
    for (const d of [...this.devices]) yield* this.unrealize(d);
    if (this.kvm && this.kvm.vm_fd_open) yield* kvm_vm_release(this.kvm);
  }

  // ------------------------------------------------------------ vfio-ap (hw/vfio/ap.c)

  /** vfio_ap_realize(): null or the error text. */
  private *realize(d: VfioApDevice): KGen<string | null> {
    const k = this.k;
    const files = this.files;
    // ap-bus: TYPE_AP_BUS with max_dev = 1; a full bus is skipped when looking for one.
    if (!this.apBus || this.devices.length >= 1) return "No 'ap-bus' bus found for device 'vfio-ap'";
    // vfio_device_get_name() / vfio_device_get_groupid(): realpath and the iommu_group link.
    const s = this.env.sysfs;
    const node = s.find(d.opts.sysfsdev, true);
    if (!node || node.type !== 'dir') return `vfio ${basename(d.opts.sysfsdev)}: no such host device: ${d.opts.sysfsdev}`;
    d.name = node.name;
    let groupLink: string;
    try {
      groupLink = s.readlink(`${node.path}/iommu_group`);
    } catch {
      return `vfio ${d.name}: no iommu_group found: ${strerror(E.ENOENT)}`;
    }
    d.groupid = Number(basename(groupLink));
    const prefix = `vfio ${d.name}: `;
    // vfio_get_group(): open, viability, container, KVM.
    const gfd: number = yield* vfio_open(this.env.vfio, files, `/dev/vfio/${d.groupid}`);
    if (gfd < 0) return `${prefix}failed to open /dev/vfio/${d.groupid}: ${strerror(-gfd)}`;
    d.group_fd = gfd;
    d.group_file = files.get(gfd);
    const status: VfioGroupStatus = { argsz: 8, flags: 0 };
    let r: number = yield* sys_ioctl(k, files, gfd, VFIO_GROUP_GET_STATUS, status);
    if (r < 0 || !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
      yield* this.put_group(d);
      return `${prefix}group ${d.groupid} is not viable\nPlease ensure all devices within the iommu_group are bound to their vfio bus driver.`;
    }
    const cfd: number = yield* vfio_open(this.env.vfio, files, '/dev/vfio/vfio');
    d.container_fd = cfd;
    r = yield* sys_ioctl(k, files, cfd, VFIO_GET_API_VERSION, undefined);
    if (r === 0) r = yield* sys_ioctl(k, files, gfd, VFIO_GROUP_SET_CONTAINER, cfd);
    if (r === 0) {
      const v2: number = yield* sys_ioctl(k, files, cfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
      r = yield* sys_ioctl(k, files, cfd, VFIO_SET_IOMMU, v2 === 1 ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU);
    }
    if (r < 0) {
      yield* this.put_group(d);
      return `${prefix}failed to setup container for group ${d.groupid}: ${strerror(-r)}`;
    }
    // vfio_kvm_device_add_group(): KVM_DEV_VFIO_FILE_ADD → vfio_file_set_kvm(group, kvm).
    const gf = d.group_file!;
    r = yield* kvm_vfio_file_add(this.kvm!, gf, (kvm) => vfio_file_set_kvm(gf, kvm));
    if (r < 0) {
      yield* this.put_group(d);
      return `${prefix}Failed to add group ${d.groupid} to KVM VFIO device: ${strerror(-r)}`;
    }
    // vfio_get_device(): VFIO_GROUP_GET_DEVICE_FD (this opens the device: KVM attach).
    const dfd: number = yield* sys_ioctl(k, files, gfd, VFIO_GROUP_GET_DEVICE_FD, d.name);
    if (dfd < 0) {
      yield* this.put_group(d);
      return `${prefix}error getting device from group ${d.groupid}: ${strerror(-dfd)}\nVerify all devices in group ${d.groupid} are bound to vfio-<bus> or pci-stub and not already in use`;
    }
    d.device_fd = dfd;
    const info: VfioDeviceInfo = { argsz: VFIO_DEVICE_INFO_MINSZ, flags: 0, num_regions: 0, num_irqs: 0 };
    r = yield* sys_ioctl(k, files, dfd, VFIO_DEVICE_GET_INFO, info);
    if (r < 0 || !(info.flags & VFIO_DEVICE_FLAGS_AP)) {
      yield* this.put_device(d);
      yield* this.put_group(d);
      return `${prefix}error getting device info: ${strerror(r < 0 ? -r : E.EINVAL)}`;
    }
    this.devices.push(d);
    d.realized = true;
    // Notifiers after the device is open (the kernel attached the VM during the open).
    yield* this.register_irq_notifier(d, VFIO_AP_REQ_IRQ_INDEX);
    yield* this.register_irq_notifier(d, VFIO_AP_CFG_CHG_IRQ_INDEX);
    return null;
  }

  /** vfio_ap_register_irq_notifier(): a missing IRQ is only a warning. */
  private *register_irq_notifier(d: VfioApDevice, index: number): KGen<void> {
    const k = this.k;
    const files = this.files;
    const what = index === VFIO_AP_REQ_IRQ_INDEX ? 'request' : 'cfg change';
    const irq: VfioIrqInfo = { argsz: VFIO_IRQ_INFO_MINSZ, flags: 0, index, count: 0 };
    const r: number = yield* sys_ioctl(k, files, d.device_fd, VFIO_DEVICE_GET_IRQ_INFO, irq);
    if (r < 0 || irq.count < 1) {
      this.warn_report(`vfio ${d.name}: ${what} notification not supported by the device`);
      return;
    }
    const ef = eventfd_file(`${d.name} ${what}`);
    const fd = files.install(ef);
    const set = { argsz: VFIO_IRQ_SET_MINSZ + 4, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1, data: [fd] };
    const rr: number = yield* sys_ioctl(k, files, d.device_fd, VFIO_DEVICE_SET_IRQS, set);
    if (rr < 0) {
      this.warn_report(`vfio ${d.name}: Failed to set ${what} notifier: ${strerror(-rr)}`);
      yield* sys_close(k, files, fd);
      return;
    }
    const ctx = ef.private_data;
    // qemu_set_fd_handler(): the main loop runs the handler when the eventfd becomes readable.
    ctx.listeners.push(() => {
      if (index === VFIO_AP_REQ_IRQ_INDEX) this.spawnMain(this.req_notifier_handler(d, ctx));
      else this.spawnMain(this.cfg_chg_notifier_handler(d, ctx));
    });
    if (index === VFIO_AP_REQ_IRQ_INDEX) {
      d.req_fd = fd;
      d.req_notifier = ctx;
    } else {
      d.cfg_fd = fd;
      d.cfg_notifier = ctx;
    }
  }

  private *unregister_irq_notifier(d: VfioApDevice, index: number): KGen<void> {
    const k = this.k;
    const fd = index === VFIO_AP_REQ_IRQ_INDEX ? d.req_fd : d.cfg_fd;
    if (fd < 0) return;
    const set = { argsz: VFIO_IRQ_SET_MINSZ + 4, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1, data: [-1] };
    const r: number = yield* sys_ioctl(k, this.files, d.device_fd, VFIO_DEVICE_SET_IRQS, set);
    if (r < 0) this.warn_report(`vfio ${d.name}: Failed to de-assign irq fd: ${strerror(-r)}`);
    const ctx = index === VFIO_AP_REQ_IRQ_INDEX ? d.req_notifier : d.cfg_notifier;
    if (ctx) ctx.listeners.length = 0;
    yield* sys_close(k, this.files, fd);
    if (index === VFIO_AP_REQ_IRQ_INDEX) {
      d.req_fd = -1;
      d.req_notifier = null;
    } else {
      d.cfg_fd = -1;
      d.cfg_notifier = null;
    }
  }

  /** vfio_ap_unrealize(): notifiers off, device closed (KVM detach), group/container put. */
  private *unrealize(d: VfioApDevice): KGen<void> {
    if (!d.realized) return;
    d.realized = false;
    yield* this.unregister_irq_notifier(d, VFIO_AP_REQ_IRQ_INDEX);
    yield* this.unregister_irq_notifier(d, VFIO_AP_CFG_CHG_IRQ_INDEX);
    yield* this.put_device(d);
    yield* this.put_group(d);
    const i = this.devices.indexOf(d);
    if (i >= 0) this.devices.splice(i, 1);
  }

  private *put_device(d: VfioApDevice): KGen<void> {
    if (d.device_fd < 0) return;
    yield* sys_close(this.k, this.files, d.device_fd);
    d.device_fd = -1;
  }

  /** vfio_put_group(): KVM_DEV_VFIO_FILE_DEL, container disconnect, close. */
  private *put_group(d: VfioApDevice): KGen<void> {
    const k = this.k;
    if (d.group_file && this.kvm && this.kvm.vm_fd_open) yield* kvm_vfio_file_del(this.kvm, d.group_file);
    if (d.group_fd >= 0) {
      if (d.container_fd >= 0) yield* sys_ioctl(k, this.files, d.group_fd, VFIO_GROUP_UNSET_CONTAINER, undefined);
      yield* sys_close(k, this.files, d.group_fd);
    }
    if (d.container_fd >= 0) yield* sys_close(k, this.files, d.container_fd);
    d.group_fd = d.container_fd = -1;
    d.group_file = null;
  }

  /** vfio_ap_req_notifier_handler(): the host wants the device back → unplug it. */
  private *req_notifier_handler(d: VfioApDevice, ctx: EventFdCtx): KGen<void> {
    if (!eventfd_read(ctx)) return; // event_notifier_test_and_clear
    d.req_handled++;
    yield* this.k.fn('vfio_ap_req_notifier_handler', this.unrealize(d));
  }

  /** vfio_ap_cfg_chg_notifier_handler(): queue an event and raise a CRW for the guest. */
  private *cfg_chg_notifier_handler(d: VfioApDevice, ctx: EventFdCtx): KGen<void> {
    if (!eventfd_read(ctx)) return;
    d.cfg_handled++;
    // The event queue and the running state are QEMU's: steps keyed by this QEMU
    // (sched_point_on) are the only ones that touch them, so the checker relates the
    // CRW path to QEMU's other paths on them and to nothing else.
    yield this.k.sched_point_on(this, 'vfio_ap_cfg_chg_notifier_handler');
    this.cfgChgEvents.push(this.cfgSeq++);
    this.css_generate_css_crws();
  }

  // ------------------------------------------------------------ channel subsystem

  /** css_generate_css_crws(): a channel report word → the guest's CRW machine check handler (caller: past a point keyed by this QEMU). */
  private css_generate_css_crws(): void {
    this.crws++;
    if (!this.running || !this.kvm) return;
    // The guest kernel's chsc_process_crw: SEI until no more events; AP change → AP bus rescan.
    this.spawnVcpu(0, this.guest_process_crw());
  }

  private *guest_process_crw(): KGen<void> {
    const k = this.k;
    yield* k.fn('guest chsc_process_crw', (function* (this: Qemu): KGen<void> {
      for (;;) {
        yield k.sched_point_on(this, 'CHSC SEI');
        const res = this.chsc_sei();
        if (res.response_code !== 1) break;
        if (res.nt === 0 && res.cc === CHSC_SEI_CC_AP_CFG_CHG && res.rs === CHSC_SEI_RS_AP) this.guest?.force_rescan();
        if (!((res.flags ?? 0) & CHSC_SEI_FLAG_PENDING)) break;
      }
    }).call(this));
  }

  /** CHSC "store event information" as QEMU answers it (ap_chsc_sei_nt0_get_event). */
  chsc_sei(): ChscSeiResult {
    if (this.cfgChgEvents.length === 0) return { response_code: 0x0005 };
    this.cfgChgEvents.shift();
    return { response_code: 0x0001, length: CHSC_SEI_NT0_RES_LEN, nt: 0, rs: CHSC_SEI_RS_AP, cc: CHSC_SEI_CC_AP_CFG_CHG, flags: this.cfgChgEvents.length ? CHSC_SEI_FLAG_PENDING : 0 };
  }
}

function basename(p: string): string {
  const parts = p.split('/').filter((x) => x !== '');
  return parts[parts.length - 1] ?? '';
}

function deviceArg(d: VfioApDeviceOptions): string {
  return `vfio-ap,${d.id ? `id=${d.id},` : ''}sysfsdev=${d.sysfsdev}`;
}

/** Runs a generator in a task of its own and returns its value (tests). */
export function qemuRunSync<T>(k: Kernel, body: KGen<T>, comm = 'qemu-system-s390x'): T {
  return runInTask(k, comm, body);
}
