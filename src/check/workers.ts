// --workers N: a seeded campaign is split by execution-index range across worker
// threads; the failure with the lowest execution index wins, so the answer does not
// depend on the number of workers (each worker's lockdep graph sees only its own
// range, so a report that needs edges from an earlier range is found later or not
// at all: split ranges are for throughput, single-threaded runs for predictions).
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { CampaignResult, Coverage } from './engine.js';
import { mergeLockOrder } from './lock_order.js';
import type { StrategyName } from './strategies/index.js';

export interface WorkerJob {
  /** Built-in scenario name, or a module URL plus the scenario name in it. */
  readonly scenario: string;
  readonly module?: string;
  readonly strategy: StrategyName;
  readonly seed: number;
  readonly from: number;
  readonly executions: number;
  readonly mutant?: string;
  readonly profile?: string;
  readonly codeVersion?: string;
  /** Absolute wall-clock deadline (ms since epoch) or 0. */
  readonly deadline: number;
  /** Restore the post-setup world snapshot (default) or boot every execution. */
  readonly snapshot?: boolean;
}

export type WorkerResult = Omit<CampaignResult, 'failure'> & { failure: (NonNullable<CampaignResult['failure']>) | null };

export function runInWorker(job: WorkerJob): Promise<WorkerResult> {
  const file = fileURLToPath(new URL('./worker.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const w = new Worker(file, { workerData: job });
    w.once('message', (m: WorkerResult) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`check worker exited with ${code}`));
    });
  });
}

/** Splits [from, from+executions) into `parts` contiguous ranges. */
export function splitRange(from: number, executions: number, parts: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) {
    const lo = from + Math.floor((i * executions) / parts);
    const hi = from + Math.floor(((i + 1) * executions) / parts);
    if (hi > lo) out.push([lo, hi - lo]);
  }
  return out;
}

/** Merges per-range results: coverage adds up; the lowest-index failure wins. */
export function mergeResults(rs: readonly WorkerResult[]): WorkerResult {
  const cov: Coverage = { executions: 0, redundant: 0, steps: 0, lockClasses: 0, lockEdges: 0, lockChains: 0, preemptions: [0, 0, 0, 0, 0], lockOrder: mergeLockOrder(rs.map((r) => r.coverage.lockOrder)) };
  let failure: WorkerResult['failure'] = null;
  for (const r of rs) {
    cov.executions += r.coverage.executions;
    cov.redundant += r.coverage.redundant;
    cov.steps += r.coverage.steps;
    cov.lockClasses = Math.max(cov.lockClasses, r.coverage.lockClasses);
    cov.lockEdges = Math.max(cov.lockEdges, r.coverage.lockEdges);
    cov.lockChains = Math.max(cov.lockChains, r.coverage.lockChains);
    r.coverage.preemptions.forEach((n, i) => (cov.preemptions[i] = (cov.preemptions[i] ?? 0) + n));
    if (r.failure && (!failure || r.failure.execution < failure.execution)) failure = r.failure;
  }
  const first = rs[0]!;
  return { ...first, failure, complete: rs.every((r) => r.complete), coverage: cov };
}
