// struct kvm and its lifetime (virt/kvm/kvm_main.c, arch/s390/kvm/kvm-s390.c), reduced to what the
// AP pass-through stack touches: users_count, kvm->lock, the vCPUs, the CRYCB, the GISA, the
// memslots and the KVM devices (kvm-vfio).
//
// Lifetime, as in Linux (spec 4.6, vfio-ap-driver 5.7):
//   * kvm_create_vm(): users_count = 1. That reference is userspace's: it stands for every KVM fd
//     QEMU holds (the VM fd, and — simplification — the vCPU fds and the kvm-vfio device fd, which
//     in Linux hold references of their own and are closed together with the VM fd at QEMU exit).
//     kvm_vm_release() (closing the VM fd) drops it.
//   * kvm_get_kvm() / kvm_put_kvm(); kvm_get_kvm_safe() fails once the count reached zero.
//   * The last put runs kvm_destroy_vm() synchronously in the putting task: vCPUs freed, GISA
//     destroyed, sie_page2 (the CRYCB) freed, then kvm_destroy_devices() → kvm-vfio destroy →
//     set_kvm(NULL) into VFIO for every attached VFIO file (kvm_vfio.ts), then the kvm is kfree'd.
//     That is the path of the seed-001 deadlock: if VFIO drops the last reference while holding a
//     lock its own set_kvm(NULL) callback takes, the task deadlocks on itself.
//   * struct kvm (and the structures embedded in it) are kzalloc'ed through the runtime, so any
//     access after kvm_destroy_vm is reported as a use-after-free with both sites.

import type { Kernel } from '../kernel/kernel.js';
import type { KGen } from '../kernel/ops.js';
import type { Mutex, RwSemaphore } from '../kernel/locks.js';
import type { Kref, WaitQueue } from '../kernel/sync.js';
import type { Machine } from '../hw/machine.js';
import { KvmMemslots, type KvmMemoryRegion } from './memslot.js';
import { KvmVcpu, kvm_s390_vcpu_setup } from './vcpu.js';
import { KvmS390CryptoCb, kvm_s390_crypto_init } from './crycb.js';
import { KvmS390GisaInterrupt, kvm_s390_gisa_deliver, kvm_s390_gisa_destroy, kvm_s390_gisa_init } from './gisa.js';
import type { KvmDevice } from './kvm_vfio.js';
import { defaultKvmPieces, type KvmPieces, type PqapHookOwner } from './priv.js';

/** STFLE facilities KVM tests for AP (test_kvm_facility): 12 QCI, 15 APFT, 65 AQIC, 76 MSAX3. */
export type KvmFacility = 12 | 15 | 65 | 76;

/**
 * The guest CPU model's AP-related features (QEMU names). Each defaults to what the host has; a
 * feature the host lacks cannot be switched on.
 */
export interface KvmCpuModel {
  /** `ap`: AP instructions for the guest. QEMU then enables APIE (kvm_s390_vm_set_crypto). */
  ap?: boolean;
  /** `apqci`: facility 12. */
  apqci?: boolean;
  /** `apft`: facility 15 (TAPQ T bit). */
  apft?: boolean;
  /** `apqi`: facility 65 (AQIC). */
  apqi?: boolean;
  /** `msa3`: facility 76 (selects CRYCB format 1/2 instead of 0). */
  msa3?: boolean;
}

export interface KvmCreateOptions {
  /** For logs and reports; default "vm<N>". */
  name?: string;
  /** Number of vCPUs (default 2). */
  vcpus?: number;
  cpu?: KvmCpuModel;
  /** Enable APIE right after creation, as QEMU does when the CPU model has `ap` (default: cpu.ap). */
  apie?: boolean;
  /** Guest memory; default one 1 GiB slot at 0. */
  memory?: KvmMemoryRegion[];
  /** Allocate a GISA (default: host has AQIC, facility 65; Linux also needs AIV). */
  gisa?: boolean;
}

export interface KvmHostOptions {
  /** The host ISC of the GISA interruption block (GIB), i.e. GAL_ISC. Default 7 [uncertain]. */
  gibIsc?: number;
  /** Replaceable pieces (mutants plug in here); defaults are the spec's fixed behaviour. */
  pieces?: Partial<KvmPieces>;
}

/**
 * The KVM module on one host: kvm_lock + vm_list, the GIB, and the machine it runs on. Routes the
 * machine's adapter interruptions that carry a GISA to the VM owning that GISA.
 */
export class KvmHost {
  /** kvm_lock: protects vm_list. */
  readonly kvm_lock: Mutex;
  readonly vm_list: Kvm[] = [];
  /** GIB: the host ISC on which GISA alerts arrive (returned by kvm_s390_gisc_register). */
  readonly gib: { readonly nisc: number; alerts: number };
  readonly pieces: KvmPieces;
  /** @internal next VM number (names, fake addresses). */
  vmSeq = 0;
  /** @internal next default QEMU process name (guestN) on this host. */
  qemuSeq = 0;

  constructor(
    readonly k: Kernel,
    readonly machine: Machine,
    opts: KvmHostOptions = {},
  ) {
    const nisc = opts.gibIsc ?? 7;
    if (!Number.isInteger(nisc) || nisc < 0 || nisc > 7) throw new RangeError(`GIB ISC must be 0..7: ${nisc}`);
    this.kvm_lock = k.mutex_init('kvm_lock');
    this.gib = { nisc, alerts: 0 };
    this.pieces = { ...defaultKvmPieces, ...opts.pieces };
    machine.onInterrupt((e) => kvm_s390_gisa_deliver(this, e));
  }

  /** ap_instructions_available() */
  ap_instructions_available(): boolean {
    return this.machine.facilities.ap;
  }
}

/** kvm->arch.crypto (struct kvm_s390_crypto). */
export class KvmS390Crypto {
  /** Points into sie_page2; freed with it in kvm_arch_destroy_vm. */
  crycb: KvmS390CryptoCb;
  /** CRYCB designation: address | format bits (0b00 / 0b01 / 0b11). Never 0 in current kernels. */
  crycbd = 0;
  /** AP instructions interpreted by SIE (KVM_S390_VM_CRYPTO_ENABLE_APIE). */
  apie = false;
  aes_kw = false;
  dea_kw = false;
  /**
   * kvm->arch.crypto.pqap_hook: points at the *field* holding the handler inside its owner (vfio_ap:
   * &matrix_mdev->pqap_hook), so the handler finds its owner and an owner freed while still
   * registered is a use-after-free on the next PQAP. Guarded by pqap_hook_rwsem.
   */
  pqap_hook: PqapHookOwner | null = null;
  readonly pqap_hook_rwsem: RwSemaphore;
  /** apsim: CRYCB mask updates done (set/clear), VSIE restart broadcasts issued. */
  mask_updates = 0;
  vsie_restarts = 0;

  constructor(k: Kernel, crycb: KvmS390CryptoCb) {
    this.crycb = crycb;
    this.pqap_hook_rwsem = k.init_rwsem('&kvm->arch.crypto.pqap_hook_rwsem');
  }
}

/** kvm->arch, the parts modelled. */
export class KvmArch {
  readonly crypto: KvmS390Crypto;
  readonly gisa_int: KvmS390GisaInterrupt;
  /** The DMA page holding the CRYCB and the GISA; null once freed by kvm_arch_destroy_vm. */
  sie_page2: { crycb: KvmS390CryptoCb } | null;

  constructor(k: Kernel, sie_page2: { crycb: KvmS390CryptoCb }) {
    this.sie_page2 = sie_page2;
    this.crypto = k.kzalloc('kvm', new KvmS390Crypto(k, sie_page2.crycb));
    this.gisa_int = k.kzalloc('kvm', new KvmS390GisaInterrupt());
  }
}

/** struct kvm */
export class Kvm {
  readonly id: number;
  readonly name: string;
  readonly users_count: Kref<Kvm>;
  /** kvm->lock (class "&kvm->lock", shared by all VMs as in the kernel). */
  readonly lock: Mutex;
  readonly arch: KvmArch;
  readonly vcpus: KvmVcpu[] = [];
  /** kvm->devices: KVM devices created on this VM (kvm-vfio). */
  readonly devices: KvmDevice[] = [];
  readonly memslots: KvmMemslots;
  /** Woken whenever a vCPU leaves SIE or vCPUs are unblocked (exit_sie spins on it). */
  readonly sie_wq: WaitQueue;
  /** Guest STFLE facilities (CPU model ∧ host). */
  readonly facilities: ReadonlySet<KvmFacility>;
  /** apsim: the VM fd is still open (userspace holds its reference). */
  vm_fd_open = true;

  /**
   * The KVM module / host this VM belongs to. Not part of struct kvm's memory (C reaches module
   * globals statically), so it stays readable after kfree: reports name the real field touched.
   */
  declare readonly host: KvmHost;

  constructor(host: KvmHost, opts: KvmCreateOptions) {
    Object.defineProperty(this, 'host', { value: host, enumerable: false, configurable: false, writable: false });
    const k = host.k;
    this.id = host.vmSeq++;
    this.name = opts.name ?? `vm${this.id}`;
    this.users_count = k.kref_init<Kvm>(this, `kvm->users_count`);
    this.lock = k.mutex_init('&kvm->lock');
    // Strict: in_sie and blocked change only in wake_up(sie_wq, action) steps or right
    // after a wait_event on it (SIE entry), so DPOR keys those waits by the queue.
    this.sie_wq = k.init_waitqueue_head(`${this.name} sie`, { strict: true });
    const m = host.machine;
    const cpu = opts.cpu ?? {};
    const fac = new Set<KvmFacility>();
    const want = (on: boolean | undefined, nr: KvmFacility) => {
      if ((on ?? true) && m.hasStfleFacility(nr)) fac.add(nr);
    };
    const ap = (cpu.ap ?? true) && m.facilities.ap;
    want(ap ? cpu.apqci : false, 12);
    want(ap ? cpu.apft : false, 15);
    want(ap ? cpu.apqi : false, 65);
    want(cpu.msa3, 76);
    this.facilities = fac;
    this.memslots = new KvmMemslots(opts.memory ?? [{ base: 0, size: 0x4000_0000 }], 0x3ff0_0000_0000 + this.id * 0x1_0000_0000);
    const page = k.kzalloc('sie_page2', { crycb: k.kzalloc('sie_page2', new KvmS390CryptoCb(0x7e00_0000 + this.id * 0x2000)) });
    this.arch = k.kzalloc('kvm', new KvmArch(k, page));
  }
}

/** test_kvm_facility() */
export function test_kvm_facility(kvm: Kvm, nr: KvmFacility): boolean {
  return kvm.facilities.has(nr);
}

/**
 * KVM_CREATE_VM (kvm_create_vm + kvm_arch_init_vm + QEMU's immediate vCPU creation and, with the
 * `ap` CPU feature, APIE enablement). Runs in any context: nobody else can see the VM yet.
 * users_count is 1: the VM fd's reference.
 */
export function kvm_create_vm(host: KvmHost, opts: KvmCreateOptions = {}): Kvm {
  const k = host.k;
  const kvm = k.kzalloc('kvm', new Kvm(host, opts));
  kvm_s390_crypto_init(kvm);
  if (opts.gisa ?? host.machine.hasStfleFacility(65)) kvm_s390_gisa_init(kvm);
  // QEMU: KVM_S390_VM_CRYPTO_ENABLE_APIE when the CPU model has `ap` (spec 4.2).
  const ap = (opts.cpu?.ap ?? true) && host.ap_instructions_available();
  if (opts.apie ?? ap) {
    if (!host.ap_instructions_available()) throw new RangeError('APIE needs AP instructions on the host');
    kvm.arch.crypto.apie = true;
  }
  const n = opts.vcpus ?? 2;
  if (!Number.isInteger(n) || n < 0 || n > 248) throw new RangeError(`vcpus must be 0..248: ${n}`);
  for (let i = 0; i < n; i++) {
    const vcpu = k.kzalloc('kvm_vcpu', new KvmVcpu(kvm, i));
    kvm.vcpus.push(vcpu);
    kvm_s390_vcpu_setup(vcpu);
  }
  host.vm_list.push(kvm);
  return kvm;
}

/** kvm_get_kvm(): the caller must already hold a reference (else refcount_t: addition on 0). */
export function* kvm_get_kvm(kvm: Kvm): KGen<void> {
  yield kvm.host.k.kref_get(kvm.users_count);
}

/**
 * kvm_get_kvm_safe(): takes a reference unless the count already reached zero (the VM is being
 * destroyed). Reads kvm->users_count, so after the kvm was freed it is a use-after-free, as in C.
 */
export function* kvm_get_kvm_safe(kvm: Kvm): KGen<boolean> {
  const ok: boolean = yield kvm.host.k.kref_get_unless_zero(kvm.users_count);
  return ok;
}

/** kvm_put_kvm(): the last put destroys the VM, in this task. Returns true if it did. */
export function* kvm_put_kvm(kvm: Kvm): KGen<boolean> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_put_kvm', (function* (): KGen<boolean> {
    const released: boolean = yield k.kref_put(kvm.users_count, (vm: Kvm) => k.fn('kvm_destroy_vm', kvm_destroy_vm(vm)));
    return released;
  })());
}

/** Closing the VM fd (kvm_vm_release): drops userspace's reference. */
export function* kvm_vm_release(kvm: Kvm): KGen<boolean> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_vm_release', (function* (): KGen<boolean> {
    if (k.WARN_ON(!kvm.vm_fd_open, 'VM fd closed twice')) return false;
    kvm.vm_fd_open = false;
    return yield* kvm_put_kvm(kvm);
  })());
}

/** kvm_destroy_vm(): runs in the task that dropped the last reference. */
function* kvm_destroy_vm(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  const host = kvm.host;
  yield k.mutex_lock(host.kvm_lock);
  const i = host.vm_list.indexOf(kvm);
  if (i >= 0) host.vm_list.splice(i, 1);
  yield k.mutex_unlock(host.kvm_lock);
  yield* k.fn('kvm_arch_destroy_vm', kvm_arch_destroy_vm(kvm));
  yield* k.fn('kvm_destroy_devices', kvm_destroy_devices(kvm));
  kvm_free_memslots(kvm);
  yield* k.fn('kvm_arch_free_vm', kvm_arch_free_vm(kvm));
}

/**
 * s390 kvm_arch_destroy_vm(): vCPUs, GISA, then sie_page2 (which holds the CRYCB). Note the order:
 * the CRYCB is gone before kvm_destroy_devices runs VFIO's set_kvm(NULL) callbacks.
 */
function* kvm_arch_destroy_vm(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  for (const vcpu of kvm.vcpus.splice(0)) yield k.kfree(vcpu);
  kvm_s390_gisa_destroy(kvm);
  const page = kvm.arch.sie_page2;
  kvm.arch.sie_page2 = null;
  if (page) {
    yield k.kfree(page.crycb);
    yield k.kfree(page);
  }
}

/** kvm_destroy_devices(): no kvm->lock — nobody else holds a reference any more. */
function* kvm_destroy_devices(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  for (const dev of kvm.devices.splice(0)) yield* k.fn(`${dev.ops.name} destroy`, dev.ops.destroy(dev));
}

/** Pages still pinned when the VM goes away were leaked by whoever pinned them. */
function kvm_free_memslots(kvm: Kvm): void {
  const n = kvm.memslots.pinnedPages;
  kvm.host.k.WARN_ON(n !== 0, `${n} guest page(s) of ${kvm.name} still pinned at VM destruction`);
}

function* kvm_arch_free_vm(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  const arch = kvm.arch;
  yield k.kfree(arch.crypto);
  yield k.kfree(arch.gisa_int);
  yield k.kfree(arch);
  yield k.kfree(kvm);
}
