// A vCPU executing one AP instruction of its guest: SIE entry, interpretation under APIE against
// the CRYCB masks (spec 4.4, 6), or interception and KVM's handler, SIE exit.
//
// Under APIE, TAPQ (with and without T), RAPQ, ZAPQ, QCI, QACT, NQAP and DQAP are interpreted by
// the (simulated) SIE: an APQN outside the guest's APM × AQM answers RC 01 / cc 3 without reaching
// the machine; inside it, the instruction runs on the machine. PQAP(AQIC) — and, without APIE,
// every AP instruction — is intercepted: the vCPU leaves SIE and KVM's handler runs (handle_pqap
// for PQAP; nothing for NQAP/DQAP, which then go to userspace).
//
// The guest_* wrappers are what a guest kernel's inline assembly does: load GR0-GR2, execute,
// read cc / GR1 / GR2. They run in the vCPU's task (a generator yielding kernel ops).

import type { KGen } from '../kernel/ops.js';
import { E } from '../kernel/errno.js';
import { apqnCard, apqnDomain, type Apqn } from '../hw/apqn.js';
import { ProgramException } from '../hw/errors.js';
import type { DqapResult, NqapOptions } from '../hw/machine.js';
import { testBit } from '../hw/mask.js';
import { NON_APXA_APQN_MASK, PQAP_FC, decodePqapGr0, encodeAqicGr1, encodePqapGr0, type AqicControl, type QciInfo } from '../hw/registers.js';
import { AP_RESPONSE, decodeStatusWord, encodeStatusWord, makeStatus, type ApQueueStatus, type ApResult } from '../hw/status.js';
import { test_kvm_facility } from './kvm.js';
import { kvm_s390_crycb_format, kvm_s390_crycb_masks, kvm_s390_guest_qci } from './crycb.js';
import { handle_pqap } from './priv.js';
import { PGM_PRIVILEGED_OP, PGM_SPECIFICATION, kvm_s390_sie_enter, kvm_s390_sie_exit, pgmKind, type KvmVcpu, type PgmKind } from './vcpu.js';

export type GuestApInsn =
  | { readonly op: 'pqap'; readonly gr0: bigint; readonly gr1?: bigint; readonly gr2?: bigint }
  | { readonly op: 'nqap'; readonly apqn: Apqn; readonly psmid: bigint; readonly msg: Uint8Array; readonly opts?: NqapOptions }
  | { readonly op: 'dqap'; readonly apqn: Apqn; readonly bufferLength?: number };

/** What the guest observes after the instruction. */
export interface GuestApResult {
  /** Condition code; undefined after a program interruption or an exit to userspace. */
  cc?: 0 | 1 | 2 | 3;
  /** Program interruption the guest takes instead of completing the instruction. */
  pgm?: PgmKind;
  /** Negative errno: the instruction was bounced to userspace (QEMU). */
  exit?: number;
  /** True if SIE intercepted the instruction and KVM handled it. */
  intercepted: boolean;
  /** GR1 / GR2 after the instruction (PQAP). */
  gr1: bigint;
  gr2: bigint;
  /** AP queue status (PQAP: decoded from GR1 bits 32-63; NQAP/DQAP: the result's). */
  status?: ApQueueStatus;
  /** TAPQ: GR2 hardware info. */
  hwinfo?: bigint;
  /** QCI: the block stored for the guest. */
  qci?: QciInfo;
  /** QACT: compatible type. */
  compatibleType?: number;
  /** DQAP */
  psmid?: bigint;
  data?: Uint8Array;
  residual?: number;
}

/** PQAP function codes SIE interprets under APIE (AQIC and SE bind/associate are intercepted). */
const INTERPRETED_FCS: ReadonlySet<number> = new Set([PQAP_FC.TAPQ, PQAP_FC.RAPQ, PQAP_FC.ZAPQ, PQAP_FC.QCI, PQAP_FC.QACT]);
const INTERCEPTED_FCS: ReadonlySet<number> = new Set([PQAP_FC.AQIC, PQAP_FC.BAPQ, PQAP_FC.AAPQ]);

/** Does SIE interpret this instruction for the vCPU (else it intercepts)? */
export function kvm_s390_ap_interpreted(vcpu: KvmVcpu, insn: GuestApInsn): boolean {
  if (!vcpu.sie_block.eca_apie) return false;
  if (insn.op !== 'pqap') return true;
  const fc = decodePqapGr0(insn.gr0).fc;
  return INTERPRETED_FCS.has(fc) || !INTERCEPTED_FCS.has(fc);
}

/** Is the APQN inside the guest's APM × AQM (as SIE reads the CRYCB)? */
export function kvm_s390_apqn_in_crycb(vcpu: KvmVcpu, apqn: Apqn): boolean {
  const m = kvm_s390_crycb_masks(vcpu.kvm);
  return testBit(m.apm, apqnCard(apqn)) && testBit(m.aqm, apqnDomain(apqn));
}

function statusGr1(s: ApQueueStatus): bigint {
  return BigInt(encodeStatusWord(s));
}

const QNA: ApResult = Object.freeze({ cc: 3, status: makeStatus(AP_RESPONSE.Q_NOT_AVAIL) });

/**
 * SIE's interpretation of an AP instruction, inside SIE. Exceptions in architectural order:
 * privileged operation (problem state), then specification (T without APFT, 8-bit ids without a
 * format-2 CRYCB, QCI without facility 12, unknown FC), then the CRYCB check (RC 01), then the
 * machine. Writes GR1/GR2 and the cc for PQAP.
 */
export function kvm_s390_sie_interpret_ap(vcpu: KvmVcpu, insn: GuestApInsn): GuestApResult {
  const kvm = vcpu.kvm;
  const m = kvm.host.machine;
  const f2 = kvm_s390_crycb_format(kvm) === 2;
  const out = (r: Omit<GuestApResult, 'intercepted' | 'gr1' | 'gr2'>): GuestApResult => ({ intercepted: false, gr1: vcpu.gprs[1]!, gr2: vcpu.gprs[2]!, ...r });
  const pgm = (code: number): GuestApResult => {
    vcpu.pgm = code;
    return out({ pgm: pgmKind(code) });
  };
  if (vcpu.psw.problemState) return pgm(PGM_PRIVILEGED_OP);
  const apqnOk = (apqn: Apqn) => f2 || (apqn & NON_APXA_APQN_MASK) === 0;
  try {
    if (insn.op === 'pqap') {
      const g = decodePqapGr0(vcpu.gprs[0]!);
      const setCc = (cc: 0 | 1 | 2 | 3) => (vcpu.psw.cc = cc);
      switch (g.fc) {
        case PQAP_FC.QCI: {
          if (!test_kvm_facility(kvm, 12)) return pgm(PGM_SPECIFICATION);
          setCc(0);
          return out({ cc: 0, qci: kvm_s390_guest_qci(kvm) });
        }
        case PQAP_FC.TAPQ:
        case PQAP_FC.RAPQ:
        case PQAP_FC.ZAPQ:
        case PQAP_FC.QACT: {
          if (g.fc === PQAP_FC.TAPQ && g.t && !test_kvm_facility(kvm, 15)) return pgm(PGM_SPECIFICATION);
          if (!apqnOk(g.apqn)) return pgm(PGM_SPECIFICATION);
          let r: ApResult & { hwinfo?: bigint; compatibleType?: number };
          if (!kvm_s390_apqn_in_crycb(vcpu, g.apqn)) r = { ...QNA, ...(g.fc === PQAP_FC.TAPQ ? { hwinfo: 0n } : {}) };
          else if (g.fc === PQAP_FC.TAPQ) r = m.tapq(g.apqn, { t: g.t });
          else if (g.fc === PQAP_FC.RAPQ) r = m.rapq(g.apqn, { f: g.f });
          else if (g.fc === PQAP_FC.ZAPQ) r = m.zapq(g.apqn, { f: g.f });
          else r = m.qact(g.apqn);
          vcpu.gprs[1] = statusGr1(r.status);
          if (r.hwinfo !== undefined) vcpu.gprs[2] = r.hwinfo;
          setCc(r.cc);
          return out({ cc: r.cc, status: r.status, ...(r.hwinfo !== undefined ? { hwinfo: r.hwinfo } : {}), ...(r.compatibleType !== undefined ? { compatibleType: r.compatibleType } : {}) });
        }
        default:
          return pgm(PGM_SPECIFICATION);
      }
    }
    if (!apqnOk(insn.apqn)) return pgm(PGM_SPECIFICATION);
    if (!kvm_s390_apqn_in_crycb(vcpu, insn.apqn)) return out({ cc: 3, status: QNA.status, ...(insn.op === 'dqap' ? { residual: 0 } : {}) });
    if (insn.op === 'nqap') {
      const d = insn.opts?.domain;
      // A request may address another domain only if it is one of the guest's control domains.
      if (d !== undefined && d !== apqnDomain(insn.apqn) && !(Number.isInteger(d) && d >= 0 && d <= 255 && testBit(kvm_s390_crycb_masks(kvm).adm, d)))
        return out({ cc: 3, status: makeStatus(AP_RESPONSE.INVALID_DOMAIN) });
      const r = m.nqap(insn.apqn, insn.psmid, insn.msg, insn.opts);
      return out({ cc: r.cc, status: r.status });
    }
    const r: DqapResult = m.dqap(insn.apqn, insn.bufferLength);
    return out({ cc: r.cc, status: r.status, residual: r.residual, ...(r.psmid !== undefined ? { psmid: r.psmid } : {}), ...(r.data ? { data: r.data } : {}) });
  } catch (e) {
    if (e instanceof ProgramException) return pgm(e.kind === 'privileged-operation' ? PGM_PRIVILEGED_OP : e.kind === 'specification' ? PGM_SPECIFICATION : 0x01);
    throw e;
  }
}

/**
 * The vCPU executes one AP instruction: load registers, enter SIE (waits while the vCPU is
 * blocked), interpret or intercept, leave SIE. Between entry and exit the vCPU counts as executing
 * guest instructions; a scheduling point sits inside that window so that CRYCB updates racing with
 * the instruction are explored.
 */
export function* kvm_s390_vcpu_exec_ap(vcpu: KvmVcpu, insn: GuestApInsn): KGen<GuestApResult> {
  const k = vcpu.kvm.host.k;
  return yield* k.fn('kvm_s390_vcpu_exec_ap', (function* (): KGen<GuestApResult> {
    vcpu.pgm = null;
    if (insn.op === 'pqap') {
      vcpu.gprs[0] = BigInt.asUintN(64, insn.gr0);
      vcpu.gprs[1] = BigInt.asUintN(64, insn.gr1 ?? 0n);
      vcpu.gprs[2] = BigInt.asUintN(64, insn.gr2 ?? 0n);
    }
    yield* kvm_s390_sie_enter(vcpu);
    yield k.sched_point('SIE: guest AP instruction');
    if (kvm_s390_ap_interpreted(vcpu, insn)) {
      const r = kvm_s390_sie_interpret_ap(vcpu, insn);
      yield* kvm_s390_sie_exit(vcpu);
      return r;
    }
    yield* kvm_s390_sie_exit(vcpu);
    // kvm_handle_sie_intercept → kvm_s390_handle_b2: only PQAP (B2AF) has a handler.
    const ret: number = insn.op === 'pqap' ? yield* handle_pqap(vcpu) : -E.EOPNOTSUPP;
    const res: GuestApResult = { intercepted: true, gr1: vcpu.gprs[1]!, gr2: vcpu.gprs[2]! };
    if (ret < 0) res.exit = ret;
    else if (vcpu.pgm !== null) res.pgm = pgmKind(vcpu.pgm);
    else {
      res.cc = vcpu.psw.cc;
      res.status = decodeStatusWord(Number(BigInt.asUintN(32, vcpu.gprs[1]!)));
    }
    return res;
  })());
}

// ---- the guest's side -------------------------------------------------------------------------

export function guest_pqap(vcpu: KvmVcpu, gr0: bigint, gr1 = 0n, gr2 = 0n): KGen<GuestApResult> {
  return kvm_s390_vcpu_exec_ap(vcpu, { op: 'pqap', gr0, gr1, gr2 });
}

export function guest_tapq(vcpu: KvmVcpu, apqn: Apqn, opts: { t?: boolean } = {}): KGen<GuestApResult> {
  return guest_pqap(vcpu, encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn, t: !!opts.t }));
}

export function guest_rapq(vcpu: KvmVcpu, apqn: Apqn): KGen<GuestApResult> {
  return guest_pqap(vcpu, encodePqapGr0({ fc: PQAP_FC.RAPQ, apqn }));
}

export function guest_zapq(vcpu: KvmVcpu, apqn: Apqn): KGen<GuestApResult> {
  return guest_pqap(vcpu, encodePqapGr0({ fc: PQAP_FC.ZAPQ, apqn }));
}

/** PQAP(AQIC): GR1 = control word (guest ISC in the ISC field), GR2 = NIB guest address. */
export function guest_aqic(vcpu: KvmVcpu, apqn: Apqn, ctrl: AqicControl, nib: number): KGen<GuestApResult> {
  return guest_pqap(vcpu, encodePqapGr0({ fc: PQAP_FC.AQIC, apqn }), encodeAqicGr1(ctrl), BigInt(nib));
}

export function guest_qci(vcpu: KvmVcpu): KGen<GuestApResult> {
  return guest_pqap(vcpu, encodePqapGr0({ fc: PQAP_FC.QCI }));
}

export function guest_nqap(vcpu: KvmVcpu, apqn: Apqn, psmid: bigint, msg: Uint8Array, opts?: NqapOptions): KGen<GuestApResult> {
  return kvm_s390_vcpu_exec_ap(vcpu, { op: 'nqap', apqn, psmid, msg, ...(opts ? { opts } : {}) });
}

export function guest_dqap(vcpu: KvmVcpu, apqn: Apqn, bufferLength?: number): KGen<GuestApResult> {
  return kvm_s390_vcpu_exec_ap(vcpu, { op: 'dqap', apqn, ...(bufferLength !== undefined ? { bufferLength } : {}) });
}
