// What the runtime reports: one record per bug, with the kernel-style text.

export type BugKind =
  | 'deadlock'
  | 'blocked-forever'
  | 'lockdep'
  | 'use-after-free'
  | 'double-free'
  | 'refcount'
  | 'leak'
  | 'bad-unlock'
  | 'task-error'
  | 'assert'
  | 'invariant'
  | 'livelock'
  | 'nondeterminism';

export interface Bug {
  readonly kind: BugKind;
  /** One-line summary. */
  readonly title: string;
  /** Full report, kernel style. */
  readonly text: string;
  /** Task that hit it, if any. */
  readonly task?: string;
  /** Scheduler step at which it was detected. */
  readonly step: number;
  /** Virtual time (ns). */
  readonly time: number;
  /** Dedup key within a campaign. */
  readonly signature: string;
}

/** Thrown out of Kernel.run() when options.throwOnBug is set (tests). */
export class BugError extends Error {
  constructor(readonly bug: Bug) {
    super(`${bug.kind}: ${bug.title}\n${bug.text}`);
    this.name = 'BugError';
  }
}
