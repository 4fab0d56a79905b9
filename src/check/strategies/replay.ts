// Replays a recorded choice list (task ids, one per choice point). Strict replay
// throws ReplayDivergence when the list does not fit; a lenient replay (used by
// minimisation) takes the recorded task if it is enabled, otherwise continues the
// previous task, otherwise the first enabled one.
import { ReplayDivergence, type Task } from '../../kernel/index.js';
import type { Explorer } from './explorer.js';

export class ReplayExplorer implements Explorer {
  readonly name = 'replay';
  readonly seeded = true;
  private i = 0;
  constructor(
    readonly choices: readonly number[],
    readonly strict = true,
  ) {}
  begin(): boolean {
    this.i = 0;
    return true;
  }
  pick(tasks: readonly Task[], n: number, _step: number, prev: Task | null): number {
    const at = this.i++;
    if (at < this.choices.length) {
      const want = this.choices[at]!;
      for (let k = 0; k < n; k++) if (tasks[k]!.id === want) return k;
      if (this.strict) throw new ReplayDivergence(`replay diverged at choice ${at}: task #${want} is not enabled`);
    } else if (this.strict) throw new ReplayDivergence(`replay exhausted after ${this.choices.length} choices but the execution continues`);
    for (let k = 0; k < n; k++) if (tasks[k] === prev) return k;
    return 0;
  }
}
