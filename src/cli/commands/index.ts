// Every CLI command, in the order `apsim --help` lists them.
import type { Command } from '../command.js';
import { selftest } from './selftest.js';
import { check } from './check.js';

export const commands: readonly Command[] = [selftest, check];
