// The campaign engine: runs executions of a scenario from scratch under an explorer
// with one Lockdep shared by the whole campaign (so an inversion seen across two
// executions is still reported), stops at the first violation, minimises it and
// renders a report with a replay token.
import { Lockdep, type Bug } from '../kernel/index.js';
import { lockOrderCoverage, type LockOrderCoverage } from './lock_order.js';
import type { AnyScenario, PieceOverrides } from './scenario.js';
import { runExecution, primaryBug, SetupCache, type ExecResult } from './execution.js';
import { makeExplorer, ReplayExplorer, DfsExplorer, type Explorer, type StrategyName } from './strategies/index.js';
import { encodeToken, fnv1a, type ReplayToken } from './token.js';
import { getMutant, mutantPieces } from './mutants.js';

export const CHECK_VERSION = 'apsim-check-1';

export interface CampaignOptions {
  readonly scenario: AnyScenario;
  readonly strategy: StrategyName;
  readonly seed: number;
  /** Executions to run: indices [from, from + executions). */
  readonly executions: number;
  readonly from?: number;
  readonly mutant?: string;
  /** Extra piece overrides (tests: fixed variants that are not registered mutants). */
  readonly pieces?: PieceOverrides;
  /** Profile for host scenarios that do not name one. */
  readonly profile?: string;
  /** PCT depth / DFS bound overrides. */
  readonly depth?: number;
  readonly preemptionBound?: number;
  /** Wall-clock budget, supplied by the caller (model code reads no clock). */
  readonly shouldStop?: () => boolean;
  readonly onProgress?: (done: number) => void;
  /** Minimise and render the failure (default true). */
  readonly minimise?: boolean;
  /** Code version folded into the config hash (the CLI passes the package version). */
  readonly codeVersion?: string;
  /**
   * Boot once and restore the world from a snapshot before each later execution
   * (default true); false boots every execution from scratch (--fresh-setup).
   */
  readonly snapshot?: boolean;
}

export interface Coverage {
  executions: number;
  redundant: number;
  steps: number;
  lockClasses: number;
  lockEdges: number;
  lockChains: number;
  /** Executions by number of preemptions (index = preemptions, last bucket = more). */
  preemptions: number[];
  /** The scenario's documented lock order: nestings seen and acquisitions against it. */
  lockOrder: LockOrderCoverage | null;
}

export interface Failure {
  /** Campaign execution index at which it was found (0-based). */
  readonly execution: number;
  readonly bug: Bug;
  /** The choice list of the failing execution as found. */
  readonly choices: readonly number[];
  readonly token: string;
  /** The rendered report (byte-identical under --replay). */
  readonly report: string;
  readonly preemptions: number;
  readonly minimised: boolean;
}

export interface CampaignResult {
  readonly scenario: string;
  readonly strategy: string;
  readonly seed: number;
  readonly mutant: string;
  readonly failure: Failure | null;
  /** True when a systematic strategy explored everything (a proof for this scenario). */
  readonly complete: boolean;
  readonly coverage: Coverage;
}

/** Hash of everything that determines an execution besides the schedule. */
export function configHash(scenario: AnyScenario, profile: string, mutant: string, codeVersion: string): number {
  return fnv1a([CHECK_VERSION, codeVersion, scenario.name, scenario.profile ?? profile, scenario.maxSteps ?? '', scenario.leakCheck ? 'leak' : '', mutant].join('\u0000'));
}

/** The piece overrides of a registered mutant (none for no mutant). */
export function piecesFor(mutant: string | undefined): PieceOverrides {
  if (!mutant) return {};
  const m = getMutant(mutant);
  if (!m) throw new Error(`unknown mutant "${mutant}" (apsim check --list-mutants)`);
  return mutantPieces(m);
}

export function runCampaign(o: CampaignOptions): CampaignResult {
  const profile = o.profile ?? 'minimal';
  const pieces = { ...piecesFor(o.mutant), ...o.pieces };
  const explorer = makeExplorer(o.strategy, { seed: o.seed, depth: o.depth, preemptionBound: o.preemptionBound });
  const lockdep = new Lockdep(true);
  const cov: Coverage = { executions: 0, redundant: 0, steps: 0, lockClasses: 0, lockEdges: 0, lockChains: 0, preemptions: [0, 0, 0, 0, 0], lockOrder: null };
  if (explorer.calibrate) {
    // PCT learns k (steps per execution) from one non-preemptive run; lockdep off so
    // the campaign's own execution 1 is where reports appear.
    const r = runExecution({ scenario: o.scenario, pieces, profile, explorer: new ReplayExplorer([], false), lockdep: new Lockdep(false) });
    explorer.calibrate(r.steps, r.spawned);
  }
  const from = o.from ?? 0;
  // Boot once, restore the booted world before every later execution.
  const setupCache = o.snapshot === false ? undefined : new SetupCache();
  let failure: Failure | null = null;
  let complete = false;
  const orderFound: number[] = [];
  for (let i = from; i < from + o.executions; i++) {
    if (!explorer.begin(i)) {
      complete = true;
      break;
    }
    const r = runExecution({ scenario: o.scenario, pieces, profile, explorer, lockdep, setupCache });
    // Which execution first went against the documented lock order (rare: a length check).
    while (orderFound.length < lockdep.orderViolations().length) orderFound.push(i);
    cov.executions++;
    cov.steps += r.steps;
    if (r.status === 'redundant') cov.redundant++;
    cov.preemptions[Math.min(r.preemptions, cov.preemptions.length - 1)]!++;
    const bug = r.status === 'redundant' ? null : primaryBug(r);
    if (bug) {
      failure = describeFailure(o, profile, pieces, explorer, i, r, bug);
      break;
    }
    if (o.onProgress && (cov.executions & 63) === 0) o.onProgress(cov.executions);
    if (o.shouldStop && (cov.executions & 15) === 0 && o.shouldStop()) break;
  }
  // A systematic explorer that used up its budget exactly may still be complete.
  if (!failure && !complete && !explorer.seeded && !explorer.begin(from + o.executions)) complete = true;
  const st = lockdep.stats();
  cov.lockClasses = st.classes;
  cov.lockEdges = st.dependencies;
  cov.lockChains = st.chains;
  cov.lockOrder = lockOrderCoverage(lockdep, orderFound);
  return { scenario: o.scenario.name, strategy: explorer.name, seed: o.seed, mutant: o.mutant ?? '', failure, complete, coverage: cov };
}

function describeFailure(o: CampaignOptions, profile: string, pieces: PieceOverrides, explorer: Explorer, index: number, r: ExecResult, bug: Bug): Failure {
  let choices = r.choices;
  let minimised = false;
  if (o.minimise !== false) {
    const m = minimise(o.scenario, profile, pieces, r, bug);
    if (m) {
      choices = m;
      minimised = true;
    }
  }
  const token: ReplayToken = {
    scenario: o.scenario.name,
    config: configHash(o.scenario, profile, o.mutant ?? '', o.codeVersion ?? ''),
    strategy: explorer.name,
    seed: o.seed,
    execution: index,
    mutant: o.mutant ?? '',
    choices,
  };
  const rep = renderReport(o.scenario, profile, pieces, token);
  return { execution: index, bug: rep.bug ?? bug, choices: r.choices, token: rep.token, report: rep.text, preemptions: rep.preemptions, minimised };
}

// ---------------------------------------------------------------- minimisation

const sameBug = (a: Bug | null, b: Bug): boolean => a !== null && a.kind === b.kind && a.signature === b.signature;

/**
 * Re-runs a choice list in the mode the target bug needs: a lockdep report must come
 * from this execution alone (fresh graph); anything else with lockdep off, so an
 * inversion report does not stop the run before the real deadlock.
 */
function probe(scenario: AnyScenario, profile: string, pieces: PieceOverrides, explorer: Explorer, target: Bug): ExecResult | null {
  explorer.begin(0);
  try {
    return runExecution({ scenario, pieces, profile, explorer, lockdep: new Lockdep(target.kind === 'lockdep'), record: true });
  } catch {
    return null;
  }
}

/**
 * Tasks a bug is about: the deadlock cycle; for a lockdep report the tasks that
 * acquired one lock of the cycle while holding another; otherwise the reporting task
 * and the tasks that touched what the report names.
 */
export function involvedTasks(r: ExecResult, bug: Bug): Set<string> {
  const s = new Set<string>(r.deadlocked);
  if (bug.task) s.add(bug.task);
  const name = (i: number) => r.taskNames[r.stepTasks[i]!]!;
  if (bug.kind === 'lockdep' && r.stepHeld.length > 0) {
    const cycle = new Set<string>();
    for (const m of bug.text.matchAll(/^\s+lock\((.+)\);$/gm)) cycle.add(m[1]!);
    for (let i = 0; i < r.stepTasks.length; i++) {
      const obj = r.stepObjects[i]!;
      if (cycle.has(obj) && r.stepHeld[i]!.some((h) => h !== obj && cycle.has(h))) s.add(name(i));
    }
    if (s.size > 1) return s;
  }
  if (s.size > 1 && r.deadlocked.length > 0) return s;
  for (let i = 0; i < r.stepTasks.length; i++) {
    const obj = r.stepObjects[i]!;
    if (obj.length >= 3 && bug.text.includes(obj)) s.add(name(i));
  }
  // End-of-run properties (invariants, leaks) are about every task.
  if (s.size === 0) for (const id of r.stepTasks) s.add(r.taskNames[id]!);
  return s;
}

/**
 * Fewest preemptions first: iterative preemption bounding restricted to the tasks
 * involved (the others run only when no involved task can), then greedy removal of
 * the remaining preemptions. Returns a choice list reproducing the bug, or null.
 */
export function minimise(scenario: AnyScenario, profile: string, pieces: PieceOverrides, r: ExecResult, bug: Bug, budget = 4000): number[] | null {
  const orig = probe(scenario, profile, pieces, new ReplayExplorer(r.choices, false), bug);
  let best: ExecResult | null = orig && sameBug(primaryBug(orig), bug) ? orig : null;
  const focus = involvedTasks(orig ?? r, bug);
  for (const f of [focus, null]) {
    if (best && best.preemptions === 0) break;
    const dfs = new DfsExplorer(Math.min(3, best ? best.preemptions - 1 : 3), true, f);
    for (let n = 0; n < budget && dfs.begin(); n++) {
      let x: ExecResult;
      try {
        x = runExecution({ scenario, pieces, profile, explorer: dfs, lockdep: new Lockdep(bug.kind === 'lockdep') });
      } catch {
        break;
      }
      if (sameBug(primaryBug(x), bug)) {
        if (!best || x.preemptions < best.preemptions) best = x;
        break;
      }
    }
    if (best) break;
  }
  if (!best) return null;
  // Greedy: try to drop each remaining preemption (continue the previous task instead).
  let improved = true;
  while (improved && best.preemptions > 0) {
    improved = false;
    for (let j = 0; j < best.choices.length && !improved; j++) {
      if (!best.preempted[j]) continue;
      const prefix = best.choices.slice(0, j);
      const x = probe(scenario, profile, pieces, new ReplayExplorer(prefix, false), bug);
      if (x && sameBug(primaryBug(x), bug) && x.preemptions < best.preemptions) {
        best = x;
        improved = true;
      }
    }
  }
  // Trim choices after the bug: a strict replay stops there too.
  return best.choices;
}

// ---------------------------------------------------------------- reports

export interface Rendered {
  readonly text: string;
  readonly token: string;
  readonly bug: Bug | null;
  readonly preemptions: number;
}

/**
 * Replays a token's choices (fresh lockdep, carrying on after the first bug so a
 * deadlock that lockdep predicted is still shown) and renders the report. The
 * campaign and `--replay` both call this, which is what makes them byte-identical.
 */
export function renderReport(scenario: AnyScenario, profile: string, pieces: PieceOverrides, token: ReplayToken): Rendered {
  const ex = new ReplayExplorer(token.choices, false);
  ex.begin();
  const r = runExecution({ scenario, pieces, profile, explorer: ex, lockdep: new Lockdep(true), trace: true, continueAfterBug: true, record: true });
  const bug = primaryBug(r);
  const tokenText = encodeToken(token);
  const lines: string[] = [];
  if (!bug) {
    lines.push(`apsim check: the replay of this token is clean (scenario ${scenario.name}${token.mutant ? `, mutant ${token.mutant}` : ''})`);
    lines.push(`Replay: apsim check --replay ${tokenText}`);
    return { text: lines.join('\n') + '\n', token: tokenText, bug: null, preemptions: r.preemptions };
  }
  const involved = involvedTasks(r, bug);
  // Cut the trace at the step where the bug was reported (later steps are noise).
  const bugIdx = r.bugs.indexOf(bug);
  const lastStep = Math.min(r.trace.length, Math.max(0, bug.step - r.stepBase));
  lines.push(`apsim check: ${bug.kind} in scenario ${scenario.name}${token.mutant ? ` (mutant ${token.mutant})` : ''}`);
  lines.push(`  ${bug.title}`);
  lines.push(`  found by ${token.strategy} (seed ${token.seed}) in execution ${token.execution + 1}; this schedule: ${r.preemptions} preemption(s), ${token.choices.length} choice point(s)`);
  lines.push('');
  lines.push(`Trace (tasks ${[...involved].join(', ')}; * = preemption; step task: op(lock) = result in function held={locks}):`);
  let choice = 0;
  for (let i = 0; i < lastStep; i++) {
    const pre = r.stepChoice[i] ? r.preempted[choice++] === true : false;
    const name = r.taskNames[r.stepTasks[i]!]!;
    if (!involved.has(name)) continue;
    const m = /^#\d+ t=\d+ (.*)$/.exec(r.trace[i]!);
    lines.push(`${pre ? '*' : ' '}${String(i + 1).padStart(5)}  ${m ? m[1] : r.trace[i]}`);
  }
  lines.push('');
  lines.push(bug.text);
  const ld = r.bugs.slice(0, bugIdx >= 0 ? bugIdx : r.bugs.length).filter((b) => b.kind === 'lockdep' && b !== bug);
  if (bug.kind !== 'lockdep' && ld.length > 0) {
    lines.push('');
    lines.push('lockdep predicted it earlier in this execution:');
    lines.push(ld[0]!.text);
  }
  lines.push('');
  lines.push(`Replay: apsim check --replay ${tokenText}`);
  return { text: lines.join('\n') + '\n', token: tokenText, bug, preemptions: r.preemptions };
}

