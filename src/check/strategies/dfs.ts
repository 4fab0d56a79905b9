// Exhaustive depth-first search over choice points with a preemption bound, run
// stateless (every execution replays its prefix from scratch). Iterative mode is
// CHESS's iterative context bounding: bound 0, then 1, ... so the first failing
// execution found has the fewest preemptions. `focus` restricts exploration to the
// named tasks: the others only run when no focused task can (minimisation).
import type { Task } from '../../kernel/index.js';
import { enabledFingerprint, notDeterministic, type Explorer } from './explorer.js';

interface Node {
  /** Fingerprint of the enabled tasks and their pending operations (replays must match it). */
  readonly enabled: number;
  /** Task ids in exploration order (continue the previous task first). */
  readonly options: number[];
  /** Preemption cost of each option (1 = switching away from an enabled task). */
  readonly cost: number[];
  idx: number;
  readonly before: number;
}

export class DfsExplorer implements Explorer {
  readonly name: string;
  readonly seeded = false;
  private readonly stack: Node[] = [];
  private pos = 0;
  private preemptions = 0;
  /** Choice points this execution must replay. */
  private prefix = 0;
  /** Current bound (iterative mode increases it). */
  bound: number;
  private started = false;
  private exhausted = false;
  /** Executions per completed bound, for coverage. */
  readonly perBound: number[] = [];
  constructor(
    readonly maxBound = 2,
    readonly iterative = true,
    readonly focus: ReadonlySet<string> | null = null,
  ) {
    this.bound = iterative ? 0 : maxBound;
    this.name = `dfs(pb=${maxBound}${iterative ? ',iterative' : ''})`;
  }

  begin(): boolean {
    if (this.started && !this.advance()) return false;
    this.started = true;
    this.pos = 0;
    this.prefix = this.stack.length;
    this.preemptions = 0;
    this.perBound[this.bound] = (this.perBound[this.bound] ?? 0) + 1;
    return true;
  }

  end(): void {
    if (this.pos < this.prefix) throw diverged(this.pos, `the execution ended there, its prefix has ${this.prefix} choice points`);
  }

  /** Moves to the next unexplored prefix; false when everything is done. */
  private advance(): boolean {
    if (this.exhausted) return false;
    const st = this.stack;
    while (st.length > 0) {
      const top = st[st.length - 1]!;
      let j = top.idx + 1;
      while (j < top.options.length && top.before + top.cost[j]! > this.bound) j++;
      if (j < top.options.length) {
        top.idx = j;
        return true;
      }
      st.pop();
    }
    if (this.iterative && this.bound < this.maxBound) {
      this.bound++;
      return true;
    }
    this.exhausted = true;
    return false;
  }

  pick(tasks: readonly Task[], n: number, _step: number, prev: Task | null): number {
    const p = this.pos++;
    const st = this.stack;
    if (p < st.length) {
      const node = st[p]!;
      if (enabledFingerprint(tasks, n) !== node.enabled) throw diverged(p, 'other tasks are enabled, or about to do other things, than the first time');
      const want = node.options[node.idx]!;
      this.preemptions = node.before + node.cost[node.idx]!;
      for (let i = 0; i < n; i++) if (tasks[i]!.id === want) return i;
      throw diverged(p, `task #${want} is not enabled`);
    }
    // A new choice point: continue the previous task first, then the others in spawn order.
    let cands: Task[] = [];
    for (let i = 0; i < n; i++) cands.push(tasks[i]!);
    if (this.focus) {
      const f = cands.filter((t) => this.focus!.has(t.name));
      // Unfocused tasks are not explored: they run (in spawn order) only when no focused task can.
      cands = f.length > 0 ? f : [cands.find((t) => t === prev) ?? cands[0]!];
    }
    const prevEnabled = prev !== null && cands.includes(prev);
    const options: number[] = [];
    const cost: number[] = [];
    if (prevEnabled) {
      options.push(prev!.id);
      cost.push(0);
    }
    for (const t of cands)
      if (t !== prev) {
        options.push(t.id);
        cost.push(prevEnabled ? 1 : 0);
      }
    const node: Node = { enabled: enabledFingerprint(tasks, n), options, cost, idx: 0, before: this.preemptions };
    st.push(node);
    this.preemptions += cost[0]!;
    const want = options[0]!;
    for (let i = 0; i < n; i++) if (tasks[i]!.id === want) return i;
    return 0;
  }
}

function diverged(choice: number, what: string) {
  return notDeterministic(`dfs: replaying a prefix, at choice ${choice}`, what);
}
