import type { Command } from '../command.js';
import { findDaemon, parseArgs, readSse, request, rootOf, runVerb, UsageError } from '../../live/client.js';

export const events: Command = {
  name: 'events',
  synopsis: '[--type dmesg,uevent,journal,guest] [--root DIR] [--json]',
  summary: 'Follow the live host: kernel messages, uevents (udevadm monitor format) and journaled operations',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('events', args, { values: ['--type'] });
      const types = p.values.get('--type') ?? 'dmesg,uevent,journal,guest';
      if (!/^[a-z]+(,[a-z]+)*$/.test(types)) throw new UsageError(`apsim events: invalid --type '${types}'`);
      const ri = findDaemon(rootOf(p));
      const res = await request(ri, 'GET', `/events?types=${types}`);
      await readSse(res, (ev, data) => {
        if (p.flags.has('--json')) return io.out(data + '\n');
        const e = JSON.parse(data) as { line?: string; text?: string; seq?: number; op?: unknown };
        if (ev === 'dmesg') io.out(`${e.line}\n`);
        else if (ev === 'uevent') io.out(`${e.text}\n\n`);
        else if (ev === 'guest') {
          const g = JSON.parse(data) as { guest: string; action: string; mdev?: string; count?: number };
          io.out(`GUEST ${g.guest} ${g.action}${g.mdev ? ` ${g.mdev}` : ''}${g.count !== undefined ? ` x${g.count}` : ''}\n`);
        } else io.out(`JOURNAL ${e.seq} ${JSON.stringify(e.op)}\n`);
      });
      return 0;
    }),
};
