import type { Command } from '../command.js';
import { runSelftest } from '../selftest.js';

export const selftest: Command = {
  name: 'selftest',
  synopsis: '[--seed N]',
  summary: "Run the kernel runtime's self-check (lockdep ABBA report, a seeded deadlock search and a replay)",
  run: (args, io) => runSelftest(args, io.out, io.err),
};
