// The default strategy, as in Coyote: a portfolio that rotates PCT d=2, PCT d=3 and
// a random walk execution by execution (execution i uses member i mod 3), so shallow
// ordering bugs, depth-3 bugs and "anything goes" schedules all get a share.
import type { Task } from '../../kernel/index.js';
import type { Explorer } from './explorer.js';
import { PctExplorer } from './pct.js';
import { RandomExplorer } from './random.js';

export class PortfolioExplorer implements Explorer {
  readonly name = 'portfolio';
  readonly seeded = true;
  readonly members: Explorer[];
  private cur: Explorer;
  constructor(readonly seed: number, members?: Explorer[]) {
    this.members = members ?? [new PctExplorer(seed, 2), new PctExplorer(seed ^ 0x5bd1e995, 3), new RandomExplorer(seed ^ 0x27d4eb2f)];
    this.cur = this.members[0]!;
  }
  /** The member that runs execution `index`. */
  memberFor(index: number): Explorer {
    return this.members[index % this.members.length]!;
  }
  calibrate(steps: number, tasks: number): void {
    for (const m of this.members) m.calibrate?.(steps, tasks);
  }
  begin(index: number): boolean {
    this.cur = this.memberFor(index);
    return this.cur.begin(index);
  }
  pick(tasks: readonly Task[], n: number, step: number, prev: Task | null): number {
    return this.cur.pick(tasks, n, step, prev);
  }
  onStep(t: Task, step: number, spawned: number): void {
    this.cur.onStep?.(t, step, spawned);
  }
  end(pending?: readonly Task[]): void {
    this.cur.end?.(pending);
  }
}
