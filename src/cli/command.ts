// The CLI's command registry: each command lives in src/cli/commands/<name>.ts and
// is listed in src/cli/commands/index.ts, so adding one touches no other command.

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  /** True when stdout is a terminal (progress bars, colours). */
  readonly isTTY: boolean;
}

export interface Command {
  readonly name: string;
  /** One line for `apsim --help`: the synopsis after the name. */
  readonly synopsis: string;
  readonly summary: string;
  /** Exit status: 0 ok, 1 failure, 2 usage error. May be async (daemon I/O). */
  run(args: string[], io: CliIo): number | Promise<number>;
}
