export * from './explorer.js';
export { RandomExplorer } from './random.js';
export { PctExplorer } from './pct.js';
export { DfsExplorer } from './dfs.js';
export { DporExplorer } from './dpor.js';
export { ReplayExplorer } from './replay.js';
export { PortfolioExplorer } from './portfolio.js';
import type { Explorer } from './explorer.js';
import { RandomExplorer } from './random.js';
import { PctExplorer } from './pct.js';
import { DfsExplorer } from './dfs.js';
import { DporExplorer } from './dpor.js';
import { PortfolioExplorer } from './portfolio.js';

export const STRATEGIES = ['portfolio', 'random', 'pct', 'dfs', 'dpor'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export interface StrategyOptions {
  seed: number;
  /** PCT depth (default 3). */
  depth?: number;
  /** DFS preemption bound (default 2). */
  preemptionBound?: number;
}

export function makeExplorer(name: StrategyName, o: StrategyOptions): Explorer {
  switch (name) {
    case 'random':
      return new RandomExplorer(o.seed);
    case 'pct':
      return new PctExplorer(o.seed, o.depth ?? 3);
    case 'dfs':
      return new DfsExplorer(o.preemptionBound ?? 2, true);
    case 'dpor':
      return new DporExplorer();
    case 'portfolio':
      return new PortfolioExplorer(o.seed);
  }
}
