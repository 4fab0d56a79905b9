// Register-level execution of PQAP, for CPU models (KVM intercepts, QEMU) that hold the guest's
// general registers: decode GR0/GR1/GR2, run the decoded instruction on the machine, and return
// the registers as the hardware leaves them (status word in the low half of GR1, spec 2.3).

import { ProgramException } from './errors.js';
import type { Machine } from './machine.js';
import { PQAP_FC, decodeAqicGr1, decodePqapGr0 } from './registers.js';
import { encodeStatusWord } from './status.js';

export interface PqapRegisters {
  gr0: bigint;
  gr1: bigint;
  gr2: bigint;
}

export interface PqapOutcome {
  cc: 0 | 1 | 2 | 3;
  gr1: bigint;
  gr2: bigint;
  /** For QCI: the 128-byte block the instruction stores at the GR2 address. */
  qciBlock?: Uint8Array;
}

/**
 * Executes PQAP for function codes TAPQ, RAPQ, ZAPQ, AQIC and QCI. Other codes (QACT, SE bind /
 * associate) raise a specification exception here; use the Machine methods directly.
 */
export function executePqap(m: Machine, regs: PqapRegisters): PqapOutcome {
  const g = decodePqapGr0(regs.gr0);
  const statusGr1 = (r: { status: Parameters<typeof encodeStatusWord>[0] }) => BigInt(encodeStatusWord(r.status));
  switch (g.fc) {
    case PQAP_FC.TAPQ: {
      const r = m.tapq(g.apqn, { t: g.t });
      return { cc: r.cc, gr1: statusGr1(r), gr2: r.hwinfo };
    }
    case PQAP_FC.RAPQ:
    case PQAP_FC.ZAPQ: {
      const r = g.fc === PQAP_FC.RAPQ ? m.rapq(g.apqn, { f: g.f }) : m.zapq(g.apqn, { f: g.f });
      return { cc: r.cc, gr1: statusGr1(r), gr2: regs.gr2 };
    }
    case PQAP_FC.AQIC: {
      if (g.bits41to47 !== 0) throw new ProgramException('specification', 'PQAP(AQIC) with GR0 bits 41-47 set');
      const r = m.aqic(g.apqn, decodeAqicGr1(regs.gr1), Number(BigInt.asUintN(64, regs.gr2)));
      return { cc: r.cc, gr1: statusGr1(r), gr2: regs.gr2 };
    }
    case PQAP_FC.QCI:
      return { cc: 0, gr1: regs.gr1, gr2: regs.gr2, qciBlock: m.qciBlock() };
    default:
      throw new ProgramException('specification', `PQAP function code ${g.fc} not supported at register level`);
  }
}
