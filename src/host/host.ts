// One simulated LPAR: the kernel runtime, the machine, sysfs and the driver core,
// the AP bus and the zcrypt default drivers, booted from a host profile. This is
// what the library, the checker and the live host all start from.
import { Kernel, RunStatus, type KernelOptions, type KGen, Errno, E, strerror } from '../kernel/index.js';
import { Machine } from '../hw/machine.js';
import { builtinProfiles, parseProfile, type HostProfile } from '../hw/index.js';
import { DriverCore } from '../base/core.js';
import type { Sysfs, ReadResult, WriteResult, IoOptions } from '../sysfs/index.js';
import { ApBus, type ApBusOptions } from '../ap/ap_bus.js';
import { Zcrypt } from '../ap/zcrypt.js';
import { KvmHost, type KvmPieces } from '../kvm/index.js';
import { vfio_init, type Vfio, type VfioPieces } from '../vfio/vfio_main.js';
import { mdev_init, type Mdev } from '../vfio/mdev.js';
import { VfioAp } from '../vfio_ap/drv.js';
import { defaultVfioApPieces, mainlineVfioApPieces, type VfioApPieces } from '../vfio_ap/pieces.js';
import { Qemu, type QemuOptions, type QemuEnv } from '../qemu/qemu.js';

export interface HostOptions extends KernelOptions {
  /** A builtin profile name, a profile object or raw JSON (validated). Default: 'default'. */
  profile?: string | HostProfile | unknown;
  /** AP bus kernel parameters (ap.apmask=, ap.aqmask=, ap.domain=, ap.useirq=). */
  ap?: ApBusOptions;
  /** Load the zcrypt default drivers (default true). */
  zcrypt?: boolean;
  /** Load vfio, mdev and vfio_ap (default true). */
  vfio_ap?: boolean;
  /**
   * Kernel profile: 'default' is the fixed behaviour of the spec, 'mainline' adds
   * its [MAINLINE-QUIRK]s. Individual pieces can be overridden (mutants).
   */
  kernel?: 'default' | 'mainline';
  pieces?: { vfio_ap?: Partial<VfioApPieces>; vfio?: Partial<VfioPieces>; kvm?: Partial<KvmPieces> };
}

/** A sysfs operation failed: errno plus the shell's message. */
export class SysfsError extends Errno {
  constructor(
    readonly path: string,
    errno: number,
  ) {
    super(errno, `${path}: ${strerror(errno)}`);
    this.name = 'SysfsError';
  }
}

/** Virtual time a discrete-mode boot lets pass after the first scan (resets, AQIC). */
export const BOOT_SETTLE_NS = 1_000_000_000;

export class Host {
  readonly k: Kernel;
  readonly machine: Machine;
  readonly core: DriverCore;
  readonly sysfs: Sysfs;
  readonly ap: ApBus;
  readonly zcrypt: Zcrypt | null;
  readonly kvm: KvmHost;
  readonly vfio: Vfio | null = null;
  readonly mdev: Mdev | null = null;
  readonly vfio_ap: VfioAp | null = null;
  readonly profile: HostProfile;

  private constructor(opts: HostOptions) {
    this.profile = resolveProfile(opts.profile);
    this.k = new Kernel(opts);
    this.machine = new Machine(this.profile, { now: () => this.k.now(), rng: this.k.rng.fork() });
    this.core = new DriverCore(this.k);
    this.sysfs = this.core.sysfs;
    this.ap = new ApBus(this.core, this.machine, opts.ap);
    this.zcrypt = opts.zcrypt === false ? null : new Zcrypt(this.ap);
    this.kvm = new KvmHost(this.k, this.machine, { pieces: opts.pieces?.kvm });
    if (opts.vfio_ap !== false) {
      this.vfio = vfio_init(this.core, { pieces: opts.pieces?.vfio });
      this.mdev = mdev_init(this.core);
      const base = opts.kernel === 'mainline' ? mainlineVfioApPieces : defaultVfioApPieces;
      this.vfio_ap = new VfioAp(this.k, this.ap, this.kvm, this.vfio, this.mdev, { pieces: { ...base, ...opts.pieces?.vfio_ap } });
    }
  }

  /**
   * Boots the host: module init (AP bus, zcrypt) and the first bus scan. In
   * discrete time this runs to completion before returning; in external time the
   * caller drives the scheduler (see bootAsync in the live host).
   */
  static boot(opts: HostOptions = {}): Host {
    const h = new Host(opts);
    h.k.spawn('swapper/0', h.k.fn('do_initcalls', h.initcalls()));
    if (h.k.timeMode === 'discrete') {
      const st = h.k.run();
      if (st !== RunStatus.DONE) throw new Error(`host boot did not complete: ${st}\n${h.k.bugs.map((b) => b.text).join('\n')}`);
      // Let the queues' initial resets and interrupt enablement finish.
      h.advance(BOOT_SETTLE_NS);
    }
    return h;
  }

  private *initcalls(): KGen<void> {
    yield* this.ap.ap_module_init();
    if (this.zcrypt) yield* this.zcrypt.init();
    if (this.vfio_ap) {
      const rc: number = yield* this.vfio_ap.vfio_ap_init();
      if (rc) this.k.pr_err(`vfio_ap: module init failed: ${rc}`);
    }
  }

  // ------------------------------------------------------------ sysfs, shell style

  /** cat PATH: the text, or throws SysfsError with the errno. */
  read(path: string, opts?: IoOptions): string {
    const r: ReadResult = this.sysfs.read(path, opts);
    if (!r.ok) throw new SysfsError(path, r.errno);
    return r.data;
  }

  /** echo DATA > PATH (data is written as given; add '\n' like echo does). */
  write(path: string, data: string, opts?: IoOptions): number {
    const r: WriteResult = this.sysfs.write(path, data, opts);
    if (!r.ok) throw new SysfsError(path, r.errno);
    return r.count;
  }

  /** Like write() but returns the errno (0 on success) instead of throwing. */
  tryWrite(path: string, data: string, opts?: IoOptions): number {
    const r = this.sysfs.write(path, data, opts);
    return r.ok ? 0 : r.errno;
  }

  /** ls PATH */
  ls(path: string): string[] {
    return this.sysfs.readdir(path);
  }

  /** What a QEMU process on this host needs. */
  qemuEnv(): QemuEnv {
    if (!this.vfio) throw new Error('this host was booted without vfio/vfio_ap');
    return { k: this.k, kvm: this.kvm, vfio: this.vfio, sysfs: this.sysfs };
  }

  /**
   * Starts a guest: `qemu-system-s390x -device vfio-ap,sysfsdev=/sys/bus/mdev/devices/<uuid>`
   * for each mdev given. Throws QemuError with QEMU's message if start-up fails.
   */
  launchGuest(opts: QemuOptions & { mdevs?: string[] } = {}): Qemu {
    const devices = opts.devices ?? (opts.mdevs ?? []).map((u, i) => ({ sysfsdev: `/sys/bus/mdev/devices/${u}`, id: `hostdev${i}` }));
    return Qemu.launch(this.qemuEnv(), { ...opts, devices });
  }

  /** Lets virtual time pass (discrete mode): timers, scans and polls run. */
  advance(ns: number): RunStatus {
    return this.k.runUntil(this.k.now() + ns);
  }

  /** Runs every task that can run now (e.g. after an HMC change spawned a rescan). */
  settle(): RunStatus {
    return this.k.run();
  }
}

function resolveProfile(p: unknown): HostProfile {
  if (p === undefined) return builtinProfiles.default!;
  if (typeof p === 'string') {
    const b = builtinProfiles[p];
    if (!b) throw new Errno(E.ENOENT, `unknown builtin profile "${p}"; expected one of ${Object.keys(builtinProfiles).join(', ')}`);
    return b;
  }
  return parseProfile(p);
}
