// Worker-thread entry for --workers: runs one execution range and posts the result.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { runCampaign } from './engine.js';
import { getScenario, loadScenarioModule, type AnyScenario } from './scenario.js';
import { registerBuiltins } from './scenarios/index.js';
import type { WorkerJob } from './workers.js';

const job = workerData as WorkerJob;
registerBuiltins();
let scenario: AnyScenario | undefined;
if (job.module) scenario = (await loadScenarioModule(job.module.startsWith('file:') ? job.module : pathToFileURL(job.module).href)).find((s) => s.name === job.scenario);
else scenario = getScenario(job.scenario);
if (!scenario) throw new Error(`worker: unknown scenario ${job.scenario}`);
// Thread plumbing, not model code: the --time deadline is wall-clock by definition.
const clock = globalThis.performance;
const r = runCampaign({
  scenario,
  strategy: job.strategy,
  seed: job.seed,
  from: job.from,
  executions: job.executions,
  mutant: job.mutant,
  profile: job.profile,
  codeVersion: job.codeVersion,
  snapshot: job.snapshot,
  shouldStop: job.deadline ? () => clock.timeOrigin + clock.now() > job.deadline : undefined,
});
parentPort!.postMessage(r);
