// Errors raised by the simulated machine. Architectural program interruptions are thrown as
// ProgramException so that a caller modelling a CPU (KVM/QEMU) can turn them into a program check.

/** A host profile failed validation. `path` names the bad field, e.g. "profile.adapters[3].type". */
export class ProfileError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
    this.name = 'ProfileError';
  }
}

export type ProgramExceptionKind = 'operation' | 'specification' | 'privileged-operation';

/** An AP instruction raised a program interruption instead of setting a condition code. */
export class ProgramException extends Error {
  constructor(
    readonly kind: ProgramExceptionKind,
    detail: string,
  ) {
    super(`${kind} exception: ${detail}`);
    this.name = 'ProgramException';
  }
}

/** An HMC/SE or SCLP operation was rejected (unknown adapter, id out of range, ...). */
export class HmcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HmcError';
  }
}
