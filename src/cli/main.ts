#!/usr/bin/env node
// apsim command-line entry point: help, version and the registered commands.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { commands } from './commands/index.js';
import type { CliIo } from './command.js';

function help(): string {
  const w = Math.max(...commands.map((c) => `${c.name} ${c.synopsis}`.length), 'version'.length) + 2;
  const line = (a: string, b: string) => `  ${a.padEnd(w)} ${b}\n`;
  let s = 'apsim — a simulated Linux s390 AP crypto pass-through stack\n\nUsage: apsim <command> [options]\n\nCommands:\n';
  s += line('help', 'Show this help');
  s += line('version', 'Print the apsim version');
  for (const c of commands) s += line(`${c.name} ${c.synopsis}`.trim(), c.summary);
  s += '\nOptions:\n';
  s += line('-h, --help', 'Show this help');
  s += line('-V, --version', 'Print the apsim version');
  s += '\nExit status: 0 on success, 1 when a check fails, 2 on a usage error.\n';
  return s;
}

export function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/cli -> package root
  const pkg = JSON.parse(readFileSync(join(here, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
  /** Is the output a terminal (progress bars)? Tests pass it; the binary asks stdout. */
  isTTY: boolean = process.stdout.isTTY === true,
): number | Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      if (rest.length) {
        err(`apsim: help takes no arguments\n`);
        return 2;
      }
      out(help());
      return 0;
    case 'version':
    case '-V':
    case '--version':
      if (rest.length) {
        err(`apsim: version takes no arguments\n`);
        return 2;
      }
      out(`apsim ${version()}\n`);
      return 0;
  }
  const c = commands.find((x) => x.name === cmd);
  if (!c) {
    err(`apsim: unknown command '${cmd}'\nRun 'apsim --help' for the list of commands.\n`);
    return 2;
  }
  const io: CliIo = { out, err, isTTY };
  return c.run(rest, io);
}

// Run when executed directly (not when imported by tests).
const invoked = process.argv[1] ? fileURLToPath(import.meta.url) === realpathSync(process.argv[1]) : false;
if (invoked) {
  const r = main(process.argv.slice(2));
  if (typeof r === 'number') process.exitCode = r;
  else r.then((code) => (process.exitCode = code), (e: unknown) => {
    process.stderr.write(`apsim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
