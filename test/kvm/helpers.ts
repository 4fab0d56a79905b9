// Fixtures for the KVM tests: a kernel, a machine on the kernel's virtual clock, the KVM module.
import { Kernel, Prng, type KGen, type KernelOptions, type Task } from '../../src/kernel/index.js';
import { Machine, builtinProfile, parseProfile, type HostProfile } from '../../src/hw/index.js';
import { KvmHost, kvm_create_vm, type Kvm, type KvmCreateOptions, type KvmHostOptions } from '../../src/kvm/index.js';

export const MS = 1_000_000;

export interface World {
  k: Kernel;
  m: Machine;
  host: KvmHost;
}

export function makeWorld(opts: { profile?: string; edit?: (p: HostProfile) => void; kernel?: KernelOptions; host?: KvmHostOptions } = {}): World {
  const k = new Kernel(opts.kernel ?? {});
  const p = builtinProfile(opts.profile ?? 'default');
  opts.edit?.(p);
  const m = new Machine(parseProfile(p), { now: () => k.now(), rng: new Prng(42) });
  const host = new KvmHost(k, m, opts.host);
  return { k, m, host };
}

export function makeVm(w: World, opts: KvmCreateOptions = {}): Kvm {
  return kvm_create_vm(w.host, opts);
}

/** Spawns body as a task, runs the kernel, returns the task (exitValue holds the result). */
export function run<T>(k: Kernel, name: string, body: KGen<T>): Task {
  const t = k.spawn(name, body);
  k.run();
  return t;
}

/** Runs body in a fresh task to completion and returns its value. */
export function call<T>(k: Kernel, body: KGen<T>, name = 'test'): T {
  const t = run(k, name, body);
  if (!t.done) throw new Error(`task ${name} did not finish (status ${k.status})`);
  if (t.error) throw t.error;
  return t.exitValue as T;
}

/** Runs a sequence of steps in one task. */
export function* seq(...steps: Array<() => KGen<unknown>>): KGen<unknown[]> {
  const out: unknown[] = [];
  for (const s of steps) out.push(yield* s());
  return out;
}
