import type { Command } from '../command.js';
import { findDaemon, parseArgs, requestJson, rootOf, runVerb } from '../../live/client.js';

interface Status {
  pid: number;
  uptime_s: number;
  virtual_time_ns: number;
  profile: string | null;
  machine: { name: string; cards: number; queues: number };
  mountpoint: string;
  mounted: boolean;
  http: { port: number; token_required: boolean };
  state: { path: string; journal_seq: number; replayed: number; replay_failed: number; snapshot_mismatches: number };
  kernel: { tasks: number; steps: number; bugs: number; dmesg_seq: number; uevent_seqnum: number };
  fuse: { requests: number; errors: number; inflight: number; open_files: number } | null;
  events: { subscribers: number };
}

export const status: Command = {
  name: 'status',
  synopsis: '[--root DIR] [--json]',
  summary: 'Show the live host: daemon, machine, mount, journal, kernel counters',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('status', args, {});
      const ri = findDaemon(rootOf(p));
      const s = await requestJson<Status>(ri, 'GET', '/status');
      if (p.flags.has('--json')) {
        io.out(JSON.stringify(s, null, 2) + '\n');
        return 0;
      }
      const vt = (s.virtual_time_ns / 1e9).toFixed(6);
      io.out(
        `apsim live host (pid ${s.pid}, up ${s.uptime_s} s, virtual time ${vt} s)\n` +
          `  profile:   ${s.profile} (${s.machine.name}: ${s.machine.cards} cards, ${s.machine.queues} queues)\n` +
          `  sysfs:     ${s.mountpoint} (${s.mounted ? 'mounted' : 'NOT mounted'})\n` +
          `  api:       http://${ri.address}:${s.http.port}${s.http.token_required ? ' (token required)' : ''}\n` +
          `  state:     ${s.state.path}, journal at ${s.state.journal_seq}, ${s.state.replayed} replayed at start` +
          `${s.state.replay_failed || s.state.snapshot_mismatches ? `, DIVERGED (${s.state.replay_failed} failed, ${s.state.snapshot_mismatches} snapshot mismatches)` : ''}\n` +
          `  kernel:    ${s.kernel.tasks} tasks, ${s.kernel.steps} steps, ${s.kernel.bugs} bug reports, dmesg seq ${s.kernel.dmesg_seq}, uevent seqnum ${s.kernel.uevent_seqnum}\n` +
          (s.fuse ? `  fuse:      ${s.fuse.requests} requests, ${s.fuse.errors} errors, ${s.fuse.inflight} in flight, ${s.fuse.open_files} open files\n` : '') +
          `  events:    ${s.events.subscribers} connected stream${s.events.subscribers === 1 ? '' : 's'} (apsim events, GET /events)\n`,
      );
      return 0;
    }),
};
