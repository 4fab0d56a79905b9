// PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS'10): every task gets a
// random priority >= d; d-1 change points are drawn from [1, k]; the highest-priority
// enabled task runs; at the i-th change point the running task drops to priority d-i.
// A bug of depth d is found per execution with probability >= 1/(n k^(d-1)).
// k (steps per execution) is learned from a calibration run before the campaign and
// then fixed, so execution i depends only on (seed, i) and ranges can be split.
import { Prng, type Task } from '../../kernel/index.js';
import { executionSeed, type Explorer } from './explorer.js';

export class PctExplorer implements Explorer {
  readonly name: string;
  readonly seeded = true;
  /** Steps per execution (k). */
  k: number;
  private rng = new Prng(1);
  private prio: number[] = [];
  private change: number[] = [];
  constructor(
    readonly seed: number,
    readonly depth = 3,
    k = 100,
  ) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError('PCT depth must be an integer >= 1');
    this.name = `pct(d=${depth})`;
    this.k = Math.max(1, k);
  }
  calibrate(steps: number): void {
    this.k = Math.max(1, steps);
  }
  begin(index: number): boolean {
    this.rng = new Prng(executionSeed(this.seed, index));
    this.prio = [];
    // d-1 distinct change points, uniform over [1, k].
    const cps = new Set<number>();
    const want = Math.min(this.depth - 1, this.k);
    while (cps.size < want) cps.add(1 + this.rng.nextInt(this.k));
    this.change = [...cps];
    return true;
  }
  /** Priority of a task; tasks seen for the first time get a random one in [d, d+1). */
  private priority(t: Task): number {
    let p = this.prio[t.id];
    if (p === undefined) p = this.prio[t.id] = this.depth + this.rng.nextFloat();
    return p;
  }
  pick(tasks: readonly Task[], n: number): number {
    let best = 0;
    let bp = this.priority(tasks[0]!);
    for (let i = 1; i < n; i++) {
      const p = this.priority(tasks[i]!);
      if (p > bp) {
        bp = p;
        best = i;
      }
    }
    return best;
  }
  onStep(t: Task, step: number): void {
    // Steps are numbered from 1 in the paper; `step` is 0-based.
    const c = this.change;
    for (let i = 0; i < c.length; i++)
      if (c[i] === step + 1) {
        this.priority(t);
        this.prio[t.id] = this.depth - (i + 1);
      }
  }
}
