// PQAP interception: handle_pqap() of arch/s390/kvm/priv.c (spec 4.4, vfio-ap-driver 6.2, 6.7).
//
// With APIE, SIE interprets every AP instruction except PQAP(AQIC), which it intercepts; KVM then
// validates the instruction and hands it to the pqap hook a driver (vfio_ap) registered on the VM.
// The steps are small exported functions, and the two that differ between designs are *pieces*
// (KvmPieces) that a mutant can replace through KvmHost options:
//   * pqap_call_hook — default: the per-VM pointer kvm->arch.crypto.pqap_hook read and called with
//     pqap_hook_rwsem held for read (the merged design; seed 004 proposed a module-global registry).
//   * pqap_no_hook   — default: RC 01 in the status word in GR1's low half, cc 3 (spec 4.4 step 9,
//     scenario 23). Mainline memcpy()s the 4-byte status to &gprs[1], i.e. into the *high* half on
//     big-endian s390: see pqap_no_hook_mainline_memcpy.
//
// Register interface (all 64-bit, s390 bit numbering 0 = MSB):
//   GR0: bits 32-39 FC, bit 40 T, bits 41-47 must be 0 for AQIC, bits 48-63 APQN.
//   GR1 in: AQIC control word (IR bit 16, gisc 21-23, ISC 61-63); out: status word in bits 32-63.
//   GR2: NIB guest address.
// The hook reads vcpu.gprs[0..2], writes vcpu.gprs[1] and returns 0 (handled: KVM sets cc 3 iff the
// RC byte, GR1 & 0x00ff0000, is non-zero, else cc 0) or a negative errno (exit to userspace).

import type { KGen } from '../kernel/ops.js';
import { E } from '../kernel/errno.js';
import { NON_APXA_APQN_MASK } from '../hw/registers.js';
import { encodeStatusWord, makeStatus, AP_RESPONSE } from '../hw/status.js';
import { test_kvm_facility, type Kvm } from './kvm.js';
import { PGM_PRIVILEGED_OP, PGM_SPECIFICATION, kvm_s390_inject_program_int, kvm_s390_set_psw_cc, type KvmVcpu } from './vcpu.js';

/** The hook: vfio_ap's handle_pqap. Returns 0 when it handled the instruction (GR1 written). */
export type CryptoHook = (vcpu: KvmVcpu) => KGen<number>;

/**
 * What kvm->arch.crypto.pqap_hook points at: an object with a `pqap_hook` field (vfio_ap: the
 * matrix_mdev). KVM reads the field at every PQAP, so an owner freed while still registered is
 * reported as a use-after-free.
 */
export interface PqapHookOwner {
  pqap_hook: CryptoHook | null;
}

/** Replaceable pieces of KVM's AP handling (see the file comment). */
export interface KvmPieces {
  /** handle_pqap step 8: call the hook if there is one; null = no hook. */
  pqap_call_hook(vcpu: KvmVcpu): KGen<number | null>;
  /** handle_pqap step 9: the answer when no driver registered a hook. */
  pqap_no_hook(vcpu: KvmVcpu): number;
}

/** GR0 fields handle_pqap looks at, from the low 32 bits as the C code does. */
export function pqap_reg0(reg0: bigint): { fc: number; t: boolean; bits41to47: number; apqn: number } {
  const lo = Number(BigInt.asUintN(32, reg0));
  return { fc: (lo >>> 24) & 0xff, t: (lo & 0x00800000) !== 0, bits41to47: (lo >>> 16) & 0x7f, apqn: lo & 0xffff };
}

/** Step 1: host AP instructions and the vCPU's ECA.APIE, else -EOPNOTSUPP (exit to userspace). */
export function pqap_check_available(vcpu: KvmVcpu): number {
  if (!vcpu.kvm.host.ap_instructions_available()) return -E.EOPNOTSUPP;
  if (!vcpu.sie_block.eca_apie) return -E.EOPNOTSUPP;
  return 0;
}

/**
 * Steps 3-7: program-interruption checks, in the kernel's order. Returns the program interruption
 * code to inject, or 0 when the instruction is valid.
 */
export function pqap_validate(vcpu: KvmVcpu): number {
  const kvm: Kvm = vcpu.kvm;
  const g = pqap_reg0(vcpu.gprs[0]!);
  if (vcpu.psw.problemState) return PGM_PRIVILEGED_OP;
  if (g.bits41to47 !== 0) return PGM_SPECIFICATION;
  if (!test_kvm_facility(kvm, 15) && g.t) return PGM_SPECIFICATION;
  // crycbd bit 0x02 is set only for format 2 (0b11).
  if ((kvm.arch.crypto.crycbd & 0x02) === 0 && (g.apqn & NON_APXA_APQN_MASK) !== 0) return PGM_SPECIFICATION;
  if (!test_kvm_facility(kvm, 65)) return PGM_SPECIFICATION;
  return 0;
}

/** Step 8 default: per-VM hook pointer, rwsem held for read across the hook call. */
export function* pqap_call_hook_rwsem(vcpu: KvmVcpu): KGen<number | null> {
  const k = vcpu.kvm.host.k;
  const crypto = vcpu.kvm.arch.crypto;
  yield k.down_read(crypto.pqap_hook_rwsem);
  const owner = crypto.pqap_hook;
  const hook = owner ? owner.pqap_hook : null;
  if (!hook) {
    yield k.up_read(crypto.pqap_hook_rwsem);
    return null;
  }
  const ret: number = yield* k.fn('pqap_hook', hook(vcpu));
  if (ret === 0) kvm_s390_set_psw_cc(vcpu, (vcpu.gprs[1]! & 0x00ff0000n) !== 0n ? 3 : 0);
  yield k.up_read(crypto.pqap_hook_rwsem);
  return ret;
}

/** Step 9 default (spec): status word with RC 01 in GR1's low half, high half zero; cc 3. */
export function pqap_no_hook_status(vcpu: KvmVcpu): number {
  vcpu.gprs[1] = BigInt(encodeStatusWord(makeStatus(AP_RESPONSE.Q_NOT_AVAIL)));
  kvm_s390_set_psw_cc(vcpu, 3);
  return 0;
}

/**
 * Step 9 as mainline codes it: memcpy(&gprs[1], &status, 4) fills GR1's high word on big-endian
 * and leaves the low word (where guests read the status) unchanged. An alternative piece.
 */
export function pqap_no_hook_mainline_memcpy(vcpu: KvmVcpu): number {
  const st = BigInt(encodeStatusWord(makeStatus(AP_RESPONSE.Q_NOT_AVAIL)));
  vcpu.gprs[1] = (st << 32n) | BigInt.asUintN(32, vcpu.gprs[1]!);
  kvm_s390_set_psw_cc(vcpu, 3);
  return 0;
}

export const defaultKvmPieces: KvmPieces = Object.freeze({
  pqap_call_hook: pqap_call_hook_rwsem,
  pqap_no_hook: pqap_no_hook_status,
});

/**
 * handle_pqap() (priv.c): the intercept handler for PQAP. Returns 0 when handled (cc or program
 * interruption set on the vCPU) or a negative errno (-EOPNOTSUPP: exit to userspace).
 */
export function* handle_pqap(vcpu: KvmVcpu): KGen<number> {
  const k = vcpu.kvm.host.k;
  return yield* k.fn('handle_pqap', (function* (): KGen<number> {
    const avail = pqap_check_available(vcpu);
    if (avail) return avail;
    // Only AQIC is intercepted (KVM does not set the TAPQ-T intercept control); anything else,
    // e.g. QCI nested under z/VM, goes to userspace.
    if (pqap_reg0(vcpu.gprs[0]!).fc !== 0x03) return -E.EOPNOTSUPP;
    const pgm = pqap_validate(vcpu);
    if (pgm) return kvm_s390_inject_program_int(vcpu, pgm);
    const pieces = vcpu.kvm.host.pieces;
    const ret = yield* pieces.pqap_call_hook(vcpu);
    if (ret !== null) return ret;
    return pieces.pqap_no_hook(vcpu);
  })());
}

/**
 * Registers `owner` as the VM's pqap hook (what vfio_ap open-codes at attach): pqap_hook_rwsem held
 * for write around the pointer store, nothing else held by this helper.
 */
export function* kvm_s390_pqap_hook_set(kvm: Kvm, owner: PqapHookOwner): KGen<void> {
  const k = kvm.host.k;
  const c = kvm.arch.crypto;
  yield k.down_write(c.pqap_hook_rwsem);
  c.pqap_hook = owner;
  yield k.up_write(c.pqap_hook_rwsem);
}

/**
 * Clears the VM's pqap hook (vfio_ap at detach). Taking the rwsem for write waits for every PQAP
 * handler still running under the read lock, so no handler runs against the owner afterwards.
 */
export function* kvm_s390_pqap_hook_clear(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  const c = kvm.arch.crypto;
  yield k.down_write(c.pqap_hook_rwsem);
  c.pqap_hook = null;
  yield k.up_write(c.pqap_hook_rwsem);
}
