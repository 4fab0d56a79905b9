// Scenarios: what the checker runs. A scenario boots a world (a Host on a profile, or
// a bare Kernel for synthetic lock programs), spawns named concurrent tasks (each a
// sequence of driver operations) and states the properties an execution must keep.
// Scenarios are data: the engine knows nothing about the driver, and mutants reach
// the driver only through the pieces each scenario hands to production constructors.
import type { Kernel, KernelOptions, KGen, LockOrder } from '../kernel/index.js';
import { Host, type HostOptions } from '../host/index.js';
import { Kernel as KernelCtor, lockOrderProblem } from '../kernel/index.js';

/** Per-component overrides of replaceable production pieces (see mutants.ts). */
export type PieceOverrides = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

export interface ScenarioEnv {
  /** Options the engine needs on the execution's kernel (strategy, lockdep, hooks). */
  readonly kernel: KernelOptions;
  /** Host profile the scenario asked for (or the --profile override). */
  readonly profile: string;
  /** Mutant overrides by component; pass pieces(name) to the production constructor. */
  pieces<T extends object>(component: string): Partial<T>;
  /** Host.boot() with the engine's kernel options and the profile. */
  boot(extra?: HostOptions): Host;
  /** A bare kernel for synthetic scenarios. */
  kernelOnly(): Kernel;
}

/** What setup() returns: the world of one execution (scenarios extend it). */
export interface World {
  readonly k: Kernel;
  readonly host?: Host;
}

export interface TaskResult {
  readonly name: string;
  readonly done: boolean;
  readonly value: unknown;
  readonly error: unknown;
}

/** Named task bodies, spawned in this order (task ids follow it). */
export type TaskList = ReadonlyArray<readonly [string, KGen<unknown>]>;

export interface Scenario<W extends World = World> {
  readonly name: string;
  readonly description: string;
  /** Host profile (for host scenarios); the config hash includes it. */
  readonly profile?: string;
  /** Step budget per execution (livelock detection). */
  readonly maxSteps?: number;
  /** 'synthetic', 'ap', 'vfio_ap', 'pair' ... (listing and selection). */
  readonly tags?: readonly string[];
  /** Part of the proven set: `apsim check --exhaustive` runs DPOR to completion on it. */
  readonly exhaustive?: boolean;
  /**
   * The documented lock order the code under test follows: acquisitions against it are
   * reported, and a whole-library run must exercise each documented nesting.
   */
  readonly lockOrder?: LockOrder;
  /** Sequential setup: boot and prepare state. Runs before the explored phase. */
  setup(env: ScenarioEnv): W;
  /** The concurrent tasks of the explored phase. */
  tasks(w: W): TaskList;
  /**
   * Properties of a completed execution (all tasks done). Report by returning
   * messages (each becomes an invariant violation) or through w.k.invariant().
   */
  check?(w: W, results: ReadonlyMap<string, TaskResult>): void | string | readonly string[];
  /** kmemleak scan at the end of each completed execution (default true). */
  readonly leakCheck?: boolean;
  /** Default strategy budget hint: executions per campaign (default 2000). */
  readonly executions?: number;
}

/** A scenario with its world type erased (what registries hold). */
export type AnyScenario = Scenario<any>;

export function makeEnv(kernel: KernelOptions, profile: string, overrides: PieceOverrides): ScenarioEnv {
  return {
    kernel,
    profile,
    pieces: <T extends object>(c: string) => (overrides[c] ?? {}) as Partial<T>,
    // Host components that take pieces get the mutant's overrides directly.
    boot: (extra?: HostOptions) => Host.boot({ ...kernel, profile, pieces: overrides as HostOptions['pieces'], ...extra }),
    kernelOnly: () => new KernelCtor(kernel),
  };
}

// ---------------------------------------------------------------- registry

const registry = new Map<string, AnyScenario>();

/** Registers a built-in (or library-provided) scenario; names are unique. */
export function registerScenario(s: AnyScenario): void {
  if (registry.has(s.name)) throw new Error(`scenario "${s.name}" is already registered`);
  validateScenario(s, s.name);
  registry.set(s.name, s);
}

export function getScenario(name: string): AnyScenario | undefined {
  return registry.get(name);
}

export function listScenarios(): AnyScenario[] {
  return [...registry.values()];
}

export function validateScenario(s: unknown, where: string): asserts s is AnyScenario {
  const x = s as Partial<AnyScenario> | null;
  if (!x || typeof x !== 'object') throw new Error(`${where}: a scenario must be an object`);
  if (typeof x.name !== 'string' || !/^[A-Za-z0-9_.:+#-]+$/.test(x.name)) throw new Error(`${where}: scenario name must be a non-empty word ([A-Za-z0-9_.:+#-])`);
  if (typeof x.description !== 'string') throw new Error(`${where}: scenario "${x.name}" needs a description`);
  if (typeof x.setup !== 'function' || typeof x.tasks !== 'function') throw new Error(`${where}: scenario "${x.name}" needs setup() and tasks()`);
  if (x.lockOrder !== undefined) {
    const bad = lockOrderProblem(x.lockOrder);
    if (bad !== null) throw new Error(`${where}: scenario "${x.name}": ${bad}`);
  }
}

/**
 * Loads user scenarios from an ES module: its default export and every named export
 * that looks like a scenario (an object with name, setup and tasks), or arrays of them.
 */
export async function loadScenarioModule(url: string): Promise<AnyScenario[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    // A missing file or a syntax error: say which file.
    throw new Error(`${url}: cannot load: ${e instanceof Error ? e.message : String(e)}`);
  }
  const out: AnyScenario[] = [];
  const seen = new Set<unknown>();
  const take = (v: unknown, where: string) => {
    if (seen.has(v)) return;
    seen.add(v);
    validateScenario(v, where);
    out.push(v);
  };
  for (const [key, v] of Object.entries(mod)) {
    const list = Array.isArray(v) ? v : [v];
    for (const item of list)
      if (item && typeof item === 'object' && 'setup' in item && 'tasks' in item) take(item, `${url} (export ${key})`);
  }
  if (out.length === 0) throw new Error(`${url}: exports no scenario (an object with name, description, setup and tasks)`);
  return out;
}
