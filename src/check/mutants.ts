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

// ---------------------------------------------------------------- vfio_ap (issue 6)

registerMutant({
  name: 'seed000-kvm-ref-after-notifier',
  description:
    'seed 000, 2022 VFIO design (kvm_ref none): VFIO takes no KVM reference across the open window, so the driver\'s kvm_get_kvm at open races VM destruction (refcount addition on 0 / use-after-free). In the 2022 design seeds 000 and 001 come from the same missing VFIO reference; the scenario tells them apart (VM fd closed concurrently with open)',
  scenarios: ['vfio-ap:vm-destroy-vs-open'],
  component: 'vfio',
  pieces: { kvm_ref: 'none' },
});

registerMutant({
  name: 'seed001-driver-put-last-under-group-lock',
  description:
    'seed 001, 2022 VFIO design (kvm_ref none): with the VM fd closed concurrently with close, the driver\'s put in close_device is the last one and destroys the VM under the group lock (kvm-vfio release → set_kvm(NULL) → group lock: recursive locking / deadlock). Same missing VFIO reference as seed 000, told apart by the scenario',
  scenarios: ['vfio-ap:vm-destroy-vs-close'],
  component: 'vfio',
  pieces: { kvm_ref: 'none' },
});

registerMutant({
  name: 'seed003-in-use-blocking-abba',
  description:
    'seed 003 original: the assign path holds guests_lock and its reservation query takes ap_attr_mutex, while an apmask write holds ap_attr_mutex and in_use blocks on guests_lock (ABBA; lockdep in execution 1)',
  scenarios: ['vfio-ap:assign-vs-apmask'],
  component: 'vfio_ap',
  pieces: { assignLocking: 'query-takes-attr-mutex' },
});

registerMutant({
  name: 'seed003-v18-in-use-trylock',
  description:
    'seed 003 v18: in_use trylocks guests_lock: no deadlock, but a mask write that conflicts with nothing fails with EBUSY while an unassign holds guests_lock',
  scenarios: ['vfio-ap:unassign-vs-apmask'],
  component: 'vfio_ap',
  pieces: { inUseLocking: 'trylock' },
});

registerMutant({
  name: 'seed004-v3-remove-ebusy-leak',
  description:
    'seed 004 v3: mdev remove while a guest has the device open returns -EBUSY, which mdev core ignores: the device goes, the matrix_mdev stays on mdev_list and leaks',
  scenarios: ['vfio-ap:remove-while-in-use'],
  component: 'vfio_ap',
  pieces: { removeWhileOpen: 'ebusy-leak' },
});

registerMutant({
  name: 'seed004-hook-rwsem-under-matrix-lock',
  description:
    'seed 004 v3: attach/detach take the pqap hook rwsem for write while holding mdevs_lock; the PQAP path takes the rwsem for read and then mdevs_lock (inversion; lockdep)',
  scenarios: ['vfio-ap:pqap-vs-close-vs-remove'],
  component: 'vfio_ap',
  pieces: { attachHook: 'under-mdevs-lock' },
});

registerMutant({
  name: 'mainline-second-open-steals-hook',
  description:
    'mainline: open sets the pqap hook before the -EPERM check, so a rejected second open (a second mdev for the same VM) steals the hook: guest AQIC on a linked APQN answers RC 01',
  scenarios: ['vfio-ap:second-open-same-vm'],
  component: 'vfio_ap',
  pieces: { attachHook: 'mainline-before-check' },
});

registerMutant({
  name: 'mainline-lost-cdoms-stay-plugged',
  description:
    'mainline: on_config_changed removes control domains "removed but not assigned" (andnot): a control domain the host loses stays plugged in the attached guest (I3 / CRYCB)',
  scenarios: ['vfio-ap:lost-cdom-vs-read'],
  component: 'vfio_ap',
  pieces: { cfgRemoveCdoms: 'mainline-andnot' },
});

registerMutant({
  name: 'stale-queue-mdev-read',
  description:
    'queue removal reads the queue\'s back reference to its mdev before taking guests_lock; an mdev remove unlinks and frees the mdev in between, and the queue path then dereferences freed memory (a bug the pair matrix found in this model)',
  scenarios: ['vfio-ap-pair:remove-B+hmc-rm-dom1'],
  component: 'vfio_ap',
  pieces: { queueMdevRead: 'before-guests-lock' },
});
