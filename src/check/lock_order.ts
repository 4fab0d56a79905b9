// Documented lock orders in a campaign's coverage: which documented nestings the
// campaign did, which acquisitions went against the order (lockdep records both, see
// Lockdep.declareOrder), merged over worker ranges and over the scenarios of a run.
import type { Lockdep, OrderViolation } from '../kernel/index.js';

export interface LockOrderCoverage {
  readonly rules: string;
  readonly source: string;
  readonly order: readonly string[];
  /** Each documented nesting (outer held while inner is acquired): did the campaign do it? */
  readonly nestings: Array<{ readonly outer: string; readonly inner: string; observed: boolean }>;
  readonly violations: CampaignOrderViolation[];
}

/** A violation with the campaign execution (0-based index) whose run first did it. */
export interface CampaignOrderViolation extends OrderViolation {
  readonly execution: number;
}

/**
 * The lock-order part of a campaign's coverage, from its lockdep graph; `executions`
 * gives, for each of lockdep's violations in order, the execution that recorded it.
 */
export function lockOrderCoverage(ld: Lockdep, executions: readonly number[]): LockOrderCoverage | null {
  const o = ld.declaredOrder;
  if (o === null) return null;
  return { rules: o.name, source: o.source, order: o.order, nestings: ld.orderCoverage(), violations: ld.orderViolations().map((v, i) => ({ ...v, execution: executions[i] ?? -1 })) };
}

/**
 * Lock-order coverage of several campaigns under the same rules (worker ranges of one
 * campaign, or the scenarios of a library run): a nesting counts once any of them saw
 * it; violations are listed once per (outer, inner), the first site kept.
 */
export function mergeLockOrder(cs: ReadonlyArray<LockOrderCoverage | null>): LockOrderCoverage | null {
  let out: LockOrderCoverage | null = null;
  for (const c of cs) {
    if (c === null) continue;
    if (out === null) {
      out = { ...c, nestings: c.nestings.map((n) => ({ ...n })), violations: [...c.violations] };
      continue;
    }
    if (c.rules !== out.rules) throw new Error(`lock-order coverage of "${c.rules}" cannot be merged into "${out.rules}"`);
    c.nestings.forEach((n, i) => {
      if (n.observed) out!.nestings[i]!.observed = true;
    });
    for (const v of c.violations) if (!out.violations.some((x) => x.outer === v.outer && x.inner === v.inner)) out.violations.push(v);
  }
  return out;
}

/** Lock-order coverage of a run, merged per set of rules (scenarios may declare different ones). */
export function lockOrderSummary(results: ReadonlyArray<{ readonly coverage: { readonly lockOrder: LockOrderCoverage | null } }>): LockOrderCoverage[] {
  const by = new Map<string, LockOrderCoverage | null>();
  for (const r of results) {
    const c = r.coverage.lockOrder;
    if (c) by.set(c.rules, mergeLockOrder([by.get(c.rules) ?? null, c]));
  }
  return [...by.values()].filter((x): x is LockOrderCoverage => x !== null);
}

/**
 * What a run found against the documented lock orders: every acquisition against an
 * order, and — when the whole library ran — every documented nesting it never did
 * (the rules are checked, not trusted; checker-anchors T9).
 */
export function lockOrderFindings(summary: readonly LockOrderCoverage[], wholeLibrary: boolean): string[] {
  const out: string[] = [];
  for (const c of summary) {
    const lines: string[] = [];
    for (const v of c.violations) {
      const where = v.site.ops.length ? ` in ${v.site.ops.join(' > ')}` : '';
      lines.push(`  against it: ${v.inner} acquired while holding ${v.outer} (first by ${v.site.comm}/${v.site.pid}${where}: ${v.site.call}; execution ${v.execution + 1})`);
    }
    if (wholeLibrary) for (const n of c.nestings) if (!n.observed) lines.push(`  never done: ${n.outer} held while acquiring ${n.inner}`);
    if (lines.length) out.push(`lock order ${c.rules}: ${c.order.join(' -> ')} (${c.source})`, ...lines);
  }
  return out;
}
