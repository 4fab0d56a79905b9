// Every CLI command, in the order `apsim --help` lists them.
import type { Command } from '../command.js';
import { selftest } from './selftest.js';
import { check } from './check.js';
import { up } from './up.js';
import { down } from './down.js';
import { status } from './status.js';
import { hmc } from './hmc.js';
import { dmesg } from './dmesg.js';
import { events } from './events.js';
import { exportCmd } from './export.js';
import { guest } from './guest.js';

export const commands: readonly Command[] = [selftest, check, up, down, status, hmc, dmesg, events, exportCmd, guest];
