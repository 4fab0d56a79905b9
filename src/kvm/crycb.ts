// The Crypto Control Block (struct kvm_s390_crypto_cb) and how KVM programs it (spec 4.1-4.3):
// format from facilities, kvm_arch_crypto_set_masks / clear_masks, the APIE VM attribute and the
// per-vCPU crypto setup.
//
// Layout (byte offsets inside the 256-byte block, MSB-first masks as everywhere in AP):
//   0x00 APCB0: APM 8 bytes (64 adapters), AQM 8 bytes (first 2 = 16 domains), ADM 8 (first 2), 8 rsvd
//   0x48 DEA wrapping-key mask (24), 0x60 AES wrapping-key mask (32)
//   0x80 APCB1: APM 32, AQM 32, ADM 32, 32 reserved (256 each)
// Formats 0/1 use APCB0, format 2 uses APCB1.

import type { KGen } from '../kernel/ops.js';
import { E } from '../kernel/errno.js';
import { MASK_BYTES, newMask, type ApMask } from '../hw/mask.js';
import type { QciInfo } from '../hw/registers.js';
import type { Machine } from '../hw/machine.js';
import { test_kvm_facility, type Kvm } from './kvm.js';
import { kvm_s390_sync_request_vsie_restart, kvm_s390_vcpu_block_all, kvm_s390_vcpu_unblock_all, kvm_s390_vcpus_in_sie, exit_sie, type KvmVcpu } from './vcpu.js';

export const CRYCB_SIZE = 0x100;
export const CRYCB_FORMAT_MASK = 0x3;
export const CRYCB_FORMAT0 = 0x0;
export const CRYCB_FORMAT1 = 0x1;
export const CRYCB_FORMAT2 = 0x3;

export const APCB0_OFFSET = 0x00;
export const APCB1_OFFSET = 0x80;
const APCB0_APM = 0x00;
const APCB0_AQM = 0x08;
const APCB0_ADM = 0x10;
const APCB1_APM = 0x80;
const APCB1_AQM = 0xa0;
const APCB1_ADM = 0xc0;

/** struct kvm_s390_crypto_cb, as raw bytes, at a (fake, 31-bit) physical address. */
export class KvmS390CryptoCb {
  readonly bytes = new Uint8Array(CRYCB_SIZE);
  constructor(readonly addr: number) {}
}

export type CrycbFormat = 0 | 1 | 2;

/** The CRYCB format of the VM (from the low 2 bits of CRYCBD). */
export function kvm_s390_crycb_format(kvm: Kvm): CrycbFormat {
  const f = kvm.arch.crypto.crycbd & CRYCB_FORMAT_MASK;
  return f === CRYCB_FORMAT2 ? 2 : f === CRYCB_FORMAT1 ? 1 : 0;
}

/** kvm_s390_apxa_installed(): APXA as a host QCI reports it (false without QCI). */
export function kvm_s390_apxa_installed(m: Machine): boolean {
  if (!m.facilities.ap || !m.facilities.qci) return false;
  return m.qci().apxa;
}

/**
 * kvm_s390_set_crycb_format(): format 0 without MSAX3 (facility 76) for the guest; else format 2
 * with APXA on the host, format 1 without.
 */
export function kvm_s390_set_crycb_format(kvm: Kvm): void {
  const c = kvm.arch.crypto;
  c.crycbd = c.crycb.addr & ~CRYCB_FORMAT_MASK;
  if (!test_kvm_facility(kvm, 76)) return;
  c.crycbd |= kvm_s390_apxa_installed(kvm.host.machine) ? CRYCB_FORMAT2 : CRYCB_FORMAT1;
}

/** kvm_s390_crypto_init() (VM creation). */
export function kvm_s390_crypto_init(kvm: Kvm): void {
  kvm_s390_set_crycb_format(kvm);
  if (!test_kvm_facility(kvm, 76)) return;
  // Protected-key functions on by default.
  kvm.arch.crypto.aes_kw = true;
  kvm.arch.crypto.dea_kw = true;
}

/** kvm_s390_vcpu_crypto_setup(): copy CRYCBD, ECA.APIE and key-wrapping bits into the SIE block. */
export function kvm_s390_vcpu_crypto_setup(vcpu: KvmVcpu): void {
  const c = vcpu.kvm.arch.crypto;
  if (!c.apie && !test_kvm_facility(vcpu.kvm, 76)) return;
  const sb = vcpu.sie_block;
  sb.crycbd = c.crycbd;
  sb.eca_apie = c.apie;
  sb.ecb3_aes = c.aes_kw;
  sb.ecb3_dea = c.dea_kw;
}

/** Mask widths per format: APCB0 64/16/16, APCB1 256/256/256. */
export function crycbWidths(format: CrycbFormat): { apm: number; aqm: number; adm: number } {
  return format === 2 ? { apm: 256, aqm: 256, adm: 256 } : { apm: 64, aqm: 16, adm: 16 };
}

function checkMask(m: ApMask, what: string): void {
  if (!(m instanceof Uint8Array) || m.length !== MASK_BYTES) throw new RangeError(`${what} must be a ${MASK_BYTES}-byte AP mask`);
}

/**
 * Model check of invariant 7.1.6 at the moment the CRYCB is written: no vCPU in SIE (a WARN here
 * means block_all was bypassed). The kvm->lock half is the kernel's lockdep_assert_held.
 */
function crycb_write_checks(kvm: Kvm): void {
  const k = kvm.host.k;
  const running = kvm_s390_vcpus_in_sie(kvm);
  k.WARN_ON(running.length > 0, `CRYCB of ${kvm.name} changed while vCPU ${running.map((v) => v.vcpu_id).join(',')} executes guest instructions`);
}

/**
 * kvm_arch_crypto_set_masks(): caller holds kvm->lock. Blocks every vCPU, copies 8/2/2 bytes into
 * APCB0 (formats 0/1: bits beyond 64/16/16 are dropped) or 32/32/32 into APCB1 (format 2),
 * broadcasts VSIE_RESTART, unblocks.
 */
export function* kvm_arch_crypto_set_masks(kvm: Kvm, apm: ApMask, aqm: ApMask, adm: ApMask): KGen<void> {
  const k = kvm.host.k;
  checkMask(apm, 'apm');
  checkMask(aqm, 'aqm');
  checkMask(adm, 'adm');
  yield* k.fn('kvm_arch_crypto_set_masks', (function* (): KGen<void> {
    k.lockdep_assert_held(kvm.lock);
    yield* kvm_s390_vcpu_block_all(kvm);
    crycb_write_checks(kvm);
    const b = kvm.arch.crypto.crycb.bytes;
    if (kvm_s390_crycb_format(kvm) === 2) {
      b.set(apm.subarray(0, 32), APCB1_APM);
      b.set(aqm.subarray(0, 32), APCB1_AQM);
      b.set(adm.subarray(0, 32), APCB1_ADM);
    } else {
      b.set(apm.subarray(0, 8), APCB0_APM);
      b.set(aqm.subarray(0, 2), APCB0_AQM);
      b.set(adm.subarray(0, 2), APCB0_ADM);
    }
    kvm.arch.crypto.mask_updates++;
    yield* kvm_s390_sync_request_vsie_restart(kvm);
    yield* kvm_s390_vcpu_unblock_all(kvm);
  })());
}

/** kvm_arch_crypto_clear_masks(): caller holds kvm->lock; zeroes both APCBs with vCPUs blocked. */
export function* kvm_arch_crypto_clear_masks(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  yield* k.fn('kvm_arch_crypto_clear_masks', (function* (): KGen<void> {
    k.lockdep_assert_held(kvm.lock);
    yield* kvm_s390_vcpu_block_all(kvm);
    crycb_write_checks(kvm);
    const b = kvm.arch.crypto.crycb.bytes;
    b.fill(0, APCB0_OFFSET, APCB0_OFFSET + 32);
    b.fill(0, APCB1_OFFSET, APCB1_OFFSET + 128);
    kvm.arch.crypto.mask_updates++;
    yield* kvm_s390_sync_request_vsie_restart(kvm);
    yield* kvm_s390_vcpu_unblock_all(kvm);
  })());
}

/** The guest's AP configuration as SIE reads it from the CRYCB, widened to 256-bit masks. */
export interface CrycbMasks {
  apm: ApMask;
  aqm: ApMask;
  adm: ApMask;
}

/** Reads the masks the way SIE does for the VM's format (APCB0: only 64/16/16 bits count). */
export function kvm_s390_crycb_masks(kvm: Kvm): CrycbMasks {
  const b = kvm.arch.crypto.crycb.bytes;
  const apm = newMask();
  const aqm = newMask();
  const adm = newMask();
  if (kvm_s390_crycb_format(kvm) === 2) {
    apm.set(b.subarray(APCB1_APM, APCB1_APM + 32));
    aqm.set(b.subarray(APCB1_AQM, APCB1_AQM + 32));
    adm.set(b.subarray(APCB1_ADM, APCB1_ADM + 32));
  } else {
    apm.set(b.subarray(APCB0_APM, APCB0_APM + 8));
    aqm.set(b.subarray(APCB0_AQM, APCB0_AQM + 2));
    adm.set(b.subarray(APCB0_ADM, APCB0_ADM + 2));
  }
  return { apm, aqm, adm };
}

/**
 * The QCI block a guest gets under APIE: the CRYCB masks, the machine's flags and Na/Nd. A guest
 * without a format-2 CRYCB cannot address ids >= 64 / 16, so it is shown APXA off and Na/Nd clamped
 * to 63/15 (spec 8 leaves this open; this is apsim's choice).
 */
export function kvm_s390_guest_qci(kvm: Kvm): QciInfo {
  const host = kvm.host.machine.qci();
  const m = kvm_s390_crycb_masks(kvm);
  const f2 = kvm_s390_crycb_format(kvm) === 2;
  return {
    ...host,
    apxa: host.apxa && f2,
    na: f2 ? host.na : Math.min(host.na, 63),
    nd: f2 ? host.nd : Math.min(host.nd, 15),
    apm: m.apm,
    aqm: m.aqm,
    adm: m.adm,
  };
}

/** VM attribute group KVM_S390_VM_CRYPTO. */
export const KVM_S390_VM_CRYPTO = Object.freeze({
  ENABLE_AES_KW: 0,
  ENABLE_DEA_KW: 1,
  DISABLE_AES_KW: 2,
  DISABLE_DEA_KW: 3,
  ENABLE_APIE: 4,
  DISABLE_APIE: 5,
});

/**
 * kvm_s390_vm_set_crypto(): KVM_SET_DEVICE_ATTR on the VM fd. Takes kvm->lock, changes the
 * setting, re-runs every vCPU's crypto setup with all vCPUs blocked. APIE without AP instructions
 * → -EOPNOTSUPP; key wrapping without MSAX3 → -EINVAL; unknown attribute → -ENXIO.
 */
export function* kvm_s390_vm_set_crypto(kvm: Kvm, attr: number): KGen<number> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_s390_vm_set_crypto', (function* (): KGen<number> {
    yield k.mutex_lock(kvm.lock);
    const c = kvm.arch.crypto;
    let rc = 0;
    switch (attr) {
      case KVM_S390_VM_CRYPTO.ENABLE_AES_KW:
      case KVM_S390_VM_CRYPTO.ENABLE_DEA_KW:
      case KVM_S390_VM_CRYPTO.DISABLE_AES_KW:
      case KVM_S390_VM_CRYPTO.DISABLE_DEA_KW:
        if (!test_kvm_facility(kvm, 76)) rc = -E.EINVAL;
        else if (attr === KVM_S390_VM_CRYPTO.ENABLE_AES_KW || attr === KVM_S390_VM_CRYPTO.DISABLE_AES_KW) c.aes_kw = attr === KVM_S390_VM_CRYPTO.ENABLE_AES_KW;
        else c.dea_kw = attr === KVM_S390_VM_CRYPTO.ENABLE_DEA_KW;
        break;
      case KVM_S390_VM_CRYPTO.ENABLE_APIE:
      case KVM_S390_VM_CRYPTO.DISABLE_APIE:
        if (!kvm.host.ap_instructions_available()) rc = -E.EOPNOTSUPP;
        else c.apie = attr === KVM_S390_VM_CRYPTO.ENABLE_APIE;
        break;
      default:
        rc = -E.ENXIO;
    }
    if (rc === 0) yield* kvm_s390_vcpu_crypto_reset_all(kvm);
    yield k.mutex_unlock(kvm.lock);
    return rc;
  })());
}

/** kvm_s390_vcpu_crypto_reset_all(): block all, redo each vCPU's crypto setup + VSIE restart, unblock. */
export function* kvm_s390_vcpu_crypto_reset_all(kvm: Kvm): KGen<void> {
  yield* kvm_s390_vcpu_block_all(kvm);
  for (const vcpu of kvm.vcpus) {
    kvm_s390_vcpu_crypto_setup(vcpu);
    vcpu.vsie_restart_pending++;
    yield* exit_sie(vcpu);
  }
  yield* kvm_s390_vcpu_unblock_all(kvm);
}
