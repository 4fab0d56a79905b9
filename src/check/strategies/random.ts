// Seeded random walk: a uniform choice at every choice point. Execution i uses its own
// seed derived from (campaign seed, i), so any index range can run anywhere.
import { Prng, type Task } from '../../kernel/index.js';
import { executionSeed, type Explorer } from './explorer.js';

export class RandomExplorer implements Explorer {
  readonly name = 'random';
  readonly seeded = true;
  private rng = new Prng(1);
  constructor(readonly seed: number) {}
  begin(index: number): boolean {
    this.rng = new Prng(executionSeed(this.seed, index));
    return true;
  }
  pick(_tasks: readonly Task[], n: number): number {
    return this.rng.nextInt(n);
  }
}
