#!/usr/bin/env node
// apsim command-line entry point. Commands that talk to a running host arrive with
// the live-host work; today the CLI offers help, version and the runtime self-check.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runSelftest } from './selftest.js';

const HELP = `apsim — a simulated Linux s390 AP crypto pass-through stack

Usage: apsim <command> [options]

Commands:
  help                 Show this help
  version              Print the apsim version
  selftest [--seed N]  Run the kernel runtime's self-check (lockdep ABBA report,
                       a seeded deadlock search and a replay) and print the results

Options:
  -h, --help           Show this help
  -V, --version        Print the apsim version

Exit status: 0 on success, 1 when a check fails, 2 on a usage error.
`;

export function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/cli -> package root
  const pkg = JSON.parse(readFileSync(join(here, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): number {
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
      out(HELP);
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
    case 'selftest':
      return runSelftest(rest, out, err);
    default:
      err(`apsim: unknown command '${cmd}'\nRun 'apsim --help' for the list of commands.\n`);
      return 2;
  }
}

// Run when executed directly (not when imported by tests).
const invoked = process.argv[1] ? fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]) : false;
if (invoked) process.exitCode = main(process.argv.slice(2));
