import type { Command } from '../command.js';
import { findDaemon, parseArgs, readSse, request, requestJson, rootOf, runVerb } from '../../live/client.js';

interface Rec {
  seq: number;
  ts: number;
  level: number;
  text: string;
  line: string;
}

export const dmesg: Command = {
  name: 'dmesg',
  synopsis: '[-w|--follow] [--root DIR] [--json]',
  summary: "Print the live kernel's ring buffer (-w: keep following new messages)",
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('dmesg', args, { flags: ['-w', '--follow'] });
      const json = p.flags.has('--json');
      const ri = findDaemon(rootOf(p));
      const follow = p.flags.has('-w') || p.flags.has('--follow');
      // Subscribe first so nothing falls between the dump and the stream.
      const stream = follow ? await request(ri, 'GET', '/events?types=dmesg') : null;
      const r = await requestJson<{ next: number; records: Rec[] }>(ri, 'GET', '/dmesg?format=json');
      const print = (x: Rec) => io.out(json ? JSON.stringify(x) + '\n' : x.line + '\n');
      for (const x of r.records) print(x);
      if (!stream) return 0;
      await readSse(stream, (_ev, data) => {
        const x = JSON.parse(data) as Rec;
        if (x.seq >= r.next) print(x);
      });
      return 0;
    }),
};
