// apsim check: the concurrency checker's command line. Wall-clock progress, time
// budgets and worker threads live here (CLI plumbing); the engine stays deterministic.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Command, CliIo } from '../command.js';
import { version } from '../main.js';
import {
  STRATEGIES,
  configHash,
  decodeToken,
  getMutant,
  getScenario,
  listMutants,
  listScenarios,
  loadScenarioModule,
  mutantPieces,
  registerBuiltins,
  renderReport,
  runCampaign,
  type AnyScenario,
  type CampaignResult,
  type StrategyName,
} from '../../check/index.js';
import { runInWorker, splitRange, mergeResults, type WorkerResult } from '../../check/workers.js';
import { ReplayDivergence } from '../../kernel/index.js';
import { lockOrderFindings, lockOrderSummary } from '../../check/lock_order.js';

const USAGE = `usage: apsim check [--scenario NAME|FILE] [--strategy ${STRATEGIES.join('|')}] [--seed N]
                   [--executions N | --time SEC] [--mutant NAME] [--list-mutants] [--list-scenarios]
                   [--replay TOKEN] [--json] [--workers N] [--shard i/n] [--exhaustive]
                   [--fresh-setup]
`;

class Usage extends Error {}
/** A scenario file that cannot be used (missing, not a module, malformed scenarios): exit 2, no usage text. */
class BadScenarioFile extends Error {}

interface Opts {
  scenario?: string;
  strategy?: StrategyName;
  seed: number;
  executions?: number;
  time?: number;
  mutant?: string;
  listMutants: boolean;
  listScenarios: boolean;
  replay?: string;
  json: boolean;
  workers: number;
  shard?: [number, number];
  exhaustive: boolean;
  /** Boot every execution instead of restoring the post-setup world snapshot. */
  freshSetup: boolean;
}

function parse(args: string[]): Opts {
  const o: Opts = { seed: 1, listMutants: false, listScenarios: false, json: false, workers: 1, exhaustive: false, freshSetup: false };
  const int = (flag: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw new Usage(`${flag} needs an integer >= ${min}`);
    return Number(v);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const val = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--scenario': o.scenario = val(); break;
      case '--strategy': {
        const s = val();
        if (!(STRATEGIES as readonly string[]).includes(s)) throw new Usage(`unknown strategy '${s}' (expected ${STRATEGIES.join(', ')})`);
        o.strategy = s as StrategyName;
        break;
      }
      case '--seed': o.seed = int(flag, val(), 0); break;
      case '--executions': o.executions = int(flag, val(), 1); break;
      case '--time': {
        const v = val();
        if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new Usage('--time needs a positive number of seconds');
        o.time = Number(v);
        break;
      }
      case '--mutant': o.mutant = val(); break;
      case '--list-mutants': o.listMutants = true; break;
      case '--list-scenarios': o.listScenarios = true; break;
      case '--replay': o.replay = val(); break;
      case '--json': o.json = true; break;
      case '--workers': o.workers = int(flag, val(), 1); break;
      case '--shard': {
        const m = /^(\d+)\/(\d+)$/.exec(val());
        if (!m || Number(m[2]) < 1 || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) throw new Usage('--shard needs i/n with 1 <= i <= n');
        o.shard = [Number(m[1]), Number(m[2])];
        break;
      }
      case '--exhaustive': o.exhaustive = true; break;
      case '--fresh-setup': o.freshSetup = true; break;
      default:
        throw new Usage(`unknown option '${a}'`);
    }
  }
  if (o.executions !== undefined && o.time !== undefined) throw new Usage('--executions and --time are mutually exclusive');
  if (o.exhaustive && o.strategy && o.strategy !== 'dpor') throw new Usage('--exhaustive runs DPOR; do not combine it with --strategy');
  const systematic = o.exhaustive || o.strategy === 'dfs' || o.strategy === 'dpor';
  if (systematic && (o.workers > 1 || o.shard)) throw new Usage('--workers and --shard split seeded strategies (random, pct, portfolio) only');
  if (o.replay && (o.mutant || o.strategy || o.exhaustive || o.shard || o.workers > 1)) throw new Usage('--replay takes only --scenario FILE and --json');
  if (o.mutant && o.scenario && !getMutant(o.mutant)) throw new Usage(`unknown mutant '${o.mutant}'`);
  return o;
}

async function resolveScenarios(o: Opts): Promise<{ list: AnyScenario[]; module?: string }> {
  if (!o.scenario) return { list: listScenarios() };
  const builtin = getScenario(o.scenario);
  if (builtin) return { list: [builtin] };
  if (/[/\\]|\.m?js$/.test(o.scenario)) {
    const url = pathToFileURL(resolve(o.scenario)).href;
    try {
      return { list: await loadScenarioModule(url), module: url };
    } catch (e) {
      throw new BadScenarioFile(e instanceof Error ? e.message : String(e));
    }
  }
  throw new Usage(`unknown scenario '${o.scenario}' (apsim check --list-scenarios, or a path to a module)`);
}

/** Progress on a terminal: executions, executions/s and ETA, redrawn in place. */
function progress(io: CliIo, label: string, total: number): { tick(done: number): void; end(): void } {
  if (!io.isTTY) return { tick() {}, end() {} };
  const t0 = Date.now();
  let last = 0;
  return {
    tick(done) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const s = Math.max(0.001, (now - t0) / 1000);
      const rate = done / s;
      const frac = Math.min(1, done / total);
      const bar = '#'.repeat(Math.round(frac * 24)).padEnd(24, '.');
      const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
      io.err(`\r${label.slice(0, 28).padEnd(28)} [${bar}] ${done}/${total} ${Math.round(rate)} exec/s ETA ${eta.toFixed(0)}s `);
    },
    end() {
      io.err('\r' + ' '.repeat(90) + '\r');
    },
  };
}

function coverageLine(r: CampaignResult | WorkerResult): string {
  const c = r.coverage;
  const lo = c.lockOrder;
  const order = lo ? `; documented nestings ${lo.nestings.filter((n) => n.observed).length}/${lo.nestings.length}${lo.violations.length ? `, ${lo.violations.length} against the order` : ''}` : '';
  return `${r.scenario}: ${c.executions} executions${c.redundant ? ` (${c.redundant} redundant)` : ''}, ${c.steps} steps, ${c.lockClasses} lock classes, ${c.lockEdges} lockdep edges, ${c.lockChains} chains; preemptions 0/1/2/3/4+: ${c.preemptions.join('/')}${order}${r.complete ? '; complete (proven)' : ''}`;
}

async function runOne(o: Opts, io: CliIo, s: AnyScenario, module: string | undefined, mutant: string | undefined, strategy: StrategyName, budget: number): Promise<WorkerResult> {
  let from = 0;
  let executions = budget;
  if (o.shard) {
    const [lo, n] = splitRange(0, budget, o.shard[1])[o.shard[0] - 1] ?? [0, 0];
    from = lo;
    executions = n;
  }
  const deadline = o.time ? Date.now() + o.time * 1000 : 0;
  const bar = progress(io, s.name, executions);
  try {
    if (o.workers > 1) {
      const jobs = splitRange(from, executions, o.workers).map(([lo, n]) =>
        runInWorker({ scenario: s.name, module, strategy, seed: o.seed, from: lo, executions: n, mutant, codeVersion: version(), deadline, snapshot: !o.freshSetup }),
      );
      return mergeResults(await Promise.all(jobs));
    }
    return runCampaign({
      scenario: s,
      strategy,
      seed: o.seed,
      from,
      executions,
      mutant,
      codeVersion: version(),
      snapshot: !o.freshSetup,
      shouldStop: deadline ? () => Date.now() > deadline : undefined,
      onProgress: (d) => bar.tick(d),
    });
  } finally {
    bar.end();
  }
}

async function replay(o: Opts, io: CliIo): Promise<number> {
  let tok;
  try {
    tok = decodeToken(o.replay!);
  } catch (e) {
    throw new Usage((e as Error).message);
  }
  const { list } = o.scenario ? await resolveScenarios(o) : { list: listScenarios() };
  const s = list.find((x) => x.name === tok.scenario);
  if (!s) throw new Usage(`the token names scenario '${tok.scenario}', which is not available${o.scenario ? '' : ' (user scenarios need --scenario FILE)'}`);
  const m = tok.mutant ? getMutant(tok.mutant) : undefined;
  if (tok.mutant && !m) throw new Usage(`the token names mutant '${tok.mutant}', which this apsim does not have`);
  if (configHash(s, 'minimal', tok.mutant, version()) !== tok.config)
    throw new Usage(`the token was made with a different configuration or apsim version (scenario ${s.name}); replay it with the apsim that printed it`);
  const r = renderReport(s, 'minimal', m ? mutantPieces(m) : {}, tok);
  if (o.json) io.out(JSON.stringify({ scenario: s.name, mutant: tok.mutant, bug: r.bug ? { kind: r.bug.kind, title: r.bug.title } : null, report: r.text, token: r.token }) + '\n');
  else io.out(r.text);
  return r.bug ? 1 : 0;
}

async function run(args: string[], io: CliIo): Promise<number> {
  registerBuiltins();
  let o: Opts;
  try {
    o = parse(args);
    if (o.listScenarios) {
      const { list } = await resolveScenarios(o);
      if (o.json)
        io.out(
          JSON.stringify(
            list.map((s) => ({ name: s.name, description: s.description, profile: s.profile ?? null, tags: s.tags ?? [], exhaustive: s.exhaustive === true, executions: s.executions ?? 2000 })),
          ) + '\n',
        );
      else for (const s of list) io.out(`${s.name}  ${s.exhaustive ? '[exhaustive] ' : ''}${s.description}\n`);
      return 0;
    }
    if (o.listMutants) {
      if (o.json) io.out(JSON.stringify(listMutants().map((m) => ({ name: m.name, description: m.description, component: m.component, scenarios: m.scenarios }))) + '\n');
      else for (const m of listMutants()) io.out(`${m.name}  ${m.description} (found by: ${m.scenarios.join(', ')})\n`);
      return 0;
    }
    if (o.replay) return await replay(o, io);
    let mutant: string | undefined;
    let scenarios: AnyScenario[];
    let module: string | undefined;
    if (o.mutant) {
      const m = getMutant(o.mutant);
      if (!m) throw new Usage(`unknown mutant '${o.mutant}' (apsim check --list-mutants)`);
      mutant = m.name;
      if (o.scenario) ({ list: scenarios, module } = await resolveScenarios(o));
      else scenarios = m.scenarios.map((n) => getScenario(n)).filter((x): x is AnyScenario => x !== undefined);
    } else {
      ({ list: scenarios, module } = await resolveScenarios(o));
      if (o.exhaustive && !o.scenario) scenarios = scenarios.filter((s) => s.exhaustive);
    }
    const strategy: StrategyName = o.exhaustive ? 'dpor' : (o.strategy ?? 'portfolio');
    const results: WorkerResult[] = [];
    let failed: WorkerResult | null = null;
    // Acquisitions against a documented order, printed under the first scenario that did each.
    const shown = new Set<string>();
    for (const s of scenarios) {
      const budget = o.exhaustive ? 1_000_000 : (o.executions ?? (o.time ? 1_000_000_000 : (s.executions ?? 2000)));
      const r = await runOne(o, io, s, module, mutant, strategy, budget);
      results.push(r);
      if (!o.json) io.out(coverageLine(r) + '\n');
      const lo = r.coverage.lockOrder;
      if (!o.json && lo) {
        const fresh = lo.violations.filter((v) => !shown.has(`${lo.rules}\0${v.outer}\0${v.inner}`));
        for (const v of fresh) shown.add(`${lo.rules}\0${v.outer}\0${v.inner}`);
        for (const line of lockOrderFindings([{ ...lo, violations: fresh }], false)) io.out(line + '\n');
      }
      if (r.failure) {
        failed = r;
        if (!o.json) io.out('\n' + r.failure.report);
        break;
      }
      if (o.exhaustive && !r.complete) {
        if (!o.json) io.out(`${s.name}: not complete within the budget\n`);
      }
    }
    const incomplete = o.exhaustive && results.some((r) => !r.complete);
    const orders = lockOrderSummary(results);
    // Nestings are owed by the default library run (every scenario, no mutant, not cut short).
    const wholeLibrary = !o.scenario && !mutant && !o.exhaustive && !o.shard && !o.time && o.executions === undefined && !failed;
    const orderFindings = lockOrderFindings(orders, wholeLibrary);
    // (Violations were printed with their scenarios; what is left are nestings never done.)
    if (!o.json) for (const f of lockOrderFindings(orders.map((c) => ({ ...c, violations: [] })), wholeLibrary)) io.out(f + '\n');
    if (o.json)
      io.out(
        JSON.stringify({
          ok: !failed && !incomplete && orderFindings.length === 0,
          strategy,
          seed: o.seed,
          mutant: mutant ?? null,
          scenarios: results.map((r) => ({
            scenario: r.scenario,
            complete: r.complete,
            coverage: r.coverage,
            failure: r.failure ? { execution: r.failure.execution, kind: r.failure.bug.kind, title: r.failure.bug.title, preemptions: r.failure.preemptions, token: r.failure.token, report: r.failure.report } : null,
          })),
          lockOrder: orders.map((c) => ({ rules: c.rules, source: c.source, order: c.order, nestings: c.nestings, violations: c.violations })),
          lockOrderFindings: orderFindings,
        }) + '\n',
      );
    else if (mutant && !failed && orderFindings.length === 0) io.out(`mutant ${mutant} survived: no scenario found it\n`);
    else if (!failed && orderFindings.length === 0) io.out(`clean: ${results.length} scenario(s), ${results.reduce((a, r) => a + r.coverage.executions, 0)} executions\n`);
    return failed || incomplete || orderFindings.length > 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof Usage) {
      io.err(`apsim check: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof BadScenarioFile || e instanceof ReplayDivergence) {
      // A scenario that does not replay is as unusable as one that does not load.
      io.err(`apsim check: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

export const check: Command = {
  name: 'check',
  synopsis: '[--scenario NAME|FILE] [--strategy S] [--mutant NAME] [--replay TOKEN] ...',
  summary: 'Explore interleavings of driver scenarios: deadlocks, lockdep, lifetime, invariants; replay tokens',
  run,
};
