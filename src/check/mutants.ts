// The mutant registry. A mutant replaces exactly one named piece of a component
// (the component's production code takes a `pieces` object: see KvmPieces in
// src/kvm/priv.ts), so production code carries no checker ifs. Each mutant names the
// scenarios the default strategy must find it with; `apsim check --mutant NAME` runs
// them and must fail. Adding a mutant is adding one entry here.

export interface Mutant {
  readonly name: string;
  readonly description: string;
  /** Scenarios that must find it (default strategy, default budget). */
  readonly scenarios: readonly string[];
  /** The component whose pieces it replaces ('kvm', 'vfio_ap', 'locks5', 'ap-stub', ...). */
  readonly component: string;
  /** The replacement pieces: a partial pieces object of that component. */
  readonly pieces: Readonly<Record<string, unknown>>;
}

const registry = new Map<string, Mutant>();

export function registerMutant(m: Mutant): void {
  if (registry.has(m.name)) throw new Error(`mutant "${m.name}" is already registered`);
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(m.name)) throw new Error(`mutant name "${m.name}": use lower-case words`);
  if (Object.keys(m.pieces).length !== 1) throw new Error(`mutant "${m.name}" must replace exactly one piece`);
  registry.set(m.name, m);
}

export function getMutant(name: string): Mutant | undefined {
  return registry.get(name);
}

export function listMutants(): Mutant[] {
  return [...registry.values()];
}

/** The overrides a scenario's setup sees (env.pieces(component)). */
export function mutantPieces(m: Mutant): Record<string, Record<string, unknown>> {
  return { [m.component]: { ...m.pieces } };
}

// ---------------------------------------------------------------- the registry

registerMutant({
  name: 'seed003-assign-guests-first',
  description:
    'seed 003 original: assigning takes guests_lock and then ap_perms_mutex, while an apmask write holds ap_perms_mutex and its in_use callback blocks on guests_lock (ABBA)',
  scenarios: ['locks5'],
  component: 'locks5',
  pieces: { assignOrder: 'guests-first' },
});

registerMutant({
  name: 'ap-stub-assign-guests-first',
  description:
    'seed 003 on the real AP bus: the stand-in vfio_ap driver assigns under its guests_lock and then takes ap_attr_mutex, inverting the order of an apmask write whose in_use callback takes guests_lock',
  scenarios: ['ap-inuse-vs-assign'],
  component: 'ap-stub',
  pieces: { assign: 'guests-first' },
});

registerMutant({
  name: 'ap-stub-assign-unlocked-check',
  description:
    'the stand-in vfio_ap driver checks the reservation masks without ap_attr_mutex: a concurrent apmask write reserves the APQN between the check and the assignment',
  scenarios: ['ap-inuse-vs-assign'],
  component: 'ap-stub',
  pieces: { assign: 'unlocked-check' },
});
