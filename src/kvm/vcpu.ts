// struct kvm_vcpu, the parts AP pass-through needs: the guest registers (GR0-GR2 carry every AP
// instruction's operands), the PSW's problem-state bit and condition code, the SIE control block
// fields for crypto (CRYCBD, ECA.APIE, ECA.AIV, ECB3 key wrapping) and the SIE entry/exit protocol
// that kvm_s390_vcpu_block_all relies on.
//
// "Executing guest instructions" = being inside SIE (in_sie, PROG_IN_SIE in prog0c). A vCPU enters
// SIE only while not blocked (PROG_BLOCK_SIE in prog20); kvm_s390_vcpu_block sets the block flag
// and waits until the vCPU has left SIE (exit_sie spins in the kernel; here it sleeps on kvm->sie_wq,
// which every SIE exit wakes). So between block_all and unblock_all no vCPU runs guest code.

import type { KGen } from '../kernel/ops.js';
import type { Kvm } from './kvm.js';
import { kvm_s390_vcpu_crypto_setup } from './crycb.js';

/** Program-interruption codes KVM injects for AP instructions. */
export const PGM_OPERATION = 0x01;
export const PGM_PRIVILEGED_OP = 0x02;
export const PGM_SPECIFICATION = 0x06;

export type PgmKind = 'operation' | 'privileged-operation' | 'specification';

export function pgmKind(code: number): PgmKind {
  return code === PGM_PRIVILEGED_OP ? 'privileged-operation' : code === PGM_SPECIFICATION ? 'specification' : 'operation';
}

/** The SIE control block fields modelled. */
export interface SieBlock {
  /** CRYCB designation copied from kvm->arch.crypto.crycbd by kvm_s390_vcpu_crypto_setup. */
  crycbd: number;
  /** ECA.APIE: AP instructions interpreted. */
  eca_apie: boolean;
  /** ECA.AIV: adapter-interruption virtualisation (needs a GISA). */
  eca_aiv: boolean;
  ecb3_aes: boolean;
  ecb3_dea: boolean;
  /** prog20 PROG_BLOCK_SIE: the vCPU may not (re-)enter SIE. */
  blocked: boolean;
  /** prog0c PROG_IN_SIE: the vCPU is executing guest instructions. */
  in_sie: boolean;
}

/** struct kvm_vcpu */
export class KvmVcpu {
  /** Guest general registers 0..15 (vcpu->run->s.regs.gprs), 64-bit unsigned. */
  readonly gprs: bigint[] = new Array<bigint>(16).fill(0n);
  /** Guest PSW: problem state (PSW_MASK_PSTATE) and condition code. */
  readonly psw = { problemState: false, cc: 0 as 0 | 1 | 2 | 3 };
  readonly sie_block: SieBlock = { crycbd: 0, eca_apie: false, eca_aiv: false, ecb3_aes: false, ecb3_dea: false, blocked: false, in_sie: false };
  /** Program interruption injected by the last intercept handler (kvm_s390_inject_program_int). */
  pgm: number | null = null;
  /** Pending KVM_REQ_VSIE_RESTART requests and how many the vCPU has processed. */
  vsie_restart_pending = 0;
  vsie_restarts_handled = 0;
  /** apsim: SIE entries, and kicks out of SIE (exit_sie). */
  sie_entries = 0;
  kicks = 0;

  constructor(
    readonly kvm: Kvm,
    readonly vcpu_id: number,
  ) {}
}

/** kvm_s390_vcpu_setup(), the crypto part (and AIV when the VM has a GISA). */
export function kvm_s390_vcpu_setup(vcpu: KvmVcpu): void {
  vcpu.sie_block.eca_aiv = vcpu.kvm.arch.gisa_int.origin !== 0;
  kvm_s390_vcpu_crypto_setup(vcpu);
}

/** Is the vCPU executing guest instructions? */
export function kvm_s390_vcpu_in_sie(vcpu: KvmVcpu): boolean {
  return vcpu.sie_block.in_sie;
}

/** vCPUs of kvm currently inside SIE. */
export function kvm_s390_vcpus_in_sie(kvm: Kvm): KvmVcpu[] {
  return kvm.vcpus.filter((v) => v.sie_block.in_sie);
}

/** kvm_s390_set_psw_cc() */
export function kvm_s390_set_psw_cc(vcpu: KvmVcpu, cc: 0 | 1 | 2 | 3): void {
  vcpu.psw.cc = cc;
}

/** kvm_s390_inject_program_int(): the guest takes a program interruption instead of a cc. */
export function kvm_s390_inject_program_int(vcpu: KvmVcpu, code: number): number {
  vcpu.pgm = code;
  return 0;
}

/**
 * SIE entry (the top of __vcpu_run's loop): wait while blocked, handle requests, then mark the
 * vCPU as executing guest code. The test of the block flag and setting in_sie are one atomic step.
 */
export function* kvm_s390_sie_enter(vcpu: KvmVcpu): KGen<void> {
  const k = vcpu.kvm.host.k;
  yield k.wait_event(vcpu.kvm.sie_wq, () => !vcpu.sie_block.blocked);
  if (vcpu.vsie_restart_pending > 0) {
    // kvm_s390_handle_requests(): nested guests rebuild their shadow CRYCB.
    vcpu.vsie_restarts_handled += vcpu.vsie_restart_pending;
    vcpu.vsie_restart_pending = 0;
  }
  vcpu.sie_block.in_sie = true;
  vcpu.sie_entries++;
}

/** SIE exit (interception or interruption): leave guest mode and wake anybody in exit_sie. */
export function* kvm_s390_sie_exit(vcpu: KvmVcpu): KGen<void> {
  yield vcpu.kvm.host.k.wake_up(vcpu.kvm.sie_wq, () => {
    vcpu.sie_block.in_sie = false;
  });
}

/** exit_sie(): kick the vCPU out of SIE and wait until it is out. */
export function* exit_sie(vcpu: KvmVcpu): KGen<void> {
  vcpu.kicks++;
  yield vcpu.kvm.host.k.wait_event(vcpu.kvm.sie_wq, () => !vcpu.sie_block.in_sie);
}

/** kvm_s390_vcpu_block(): no SIE entry from now on, and the vCPU is out of SIE on return. */
export function* kvm_s390_vcpu_block(vcpu: KvmVcpu): KGen<void> {
  // atomic_or(PROG_BLOCK_SIE, prog20) as one step on sie_wq (the queue is strict).
  yield vcpu.kvm.host.k.wake_up(vcpu.kvm.sie_wq, () => {
    vcpu.sie_block.blocked = true;
  });
  yield* exit_sie(vcpu);
}

export function* kvm_s390_vcpu_unblock(vcpu: KvmVcpu): KGen<void> {
  yield vcpu.kvm.host.k.wake_up(vcpu.kvm.sie_wq, () => {
    vcpu.sie_block.blocked = false;
  });
}

/** kvm_s390_vcpu_block_all(): on return no vCPU of kvm executes guest instructions. */
export function* kvm_s390_vcpu_block_all(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  yield* k.fn('kvm_s390_vcpu_block_all', (function* (): KGen<void> {
    for (const vcpu of kvm.vcpus) yield* kvm_s390_vcpu_block(vcpu);
  })());
}

export function* kvm_s390_vcpu_unblock_all(kvm: Kvm): KGen<void> {
  const k = kvm.host.k;
  yield* k.fn('kvm_s390_vcpu_unblock_all', (function* (): KGen<void> {
    yield k.wake_up(kvm.sie_wq, () => {
      for (const vcpu of kvm.vcpus) vcpu.sie_block.blocked = false;
    });
  })());
}

/**
 * kvm_s390_sync_request_broadcast(kvm, KVM_REQ_VSIE_RESTART): every vCPU gets the request and is
 * kicked out of SIE; it handles the request at its next SIE entry.
 */
export function* kvm_s390_sync_request_vsie_restart(kvm: Kvm): KGen<void> {
  kvm.arch.crypto.vsie_restarts++;
  for (const vcpu of kvm.vcpus) {
    vcpu.vsie_restart_pending++;
    yield* exit_sie(vcpu);
  }
}
