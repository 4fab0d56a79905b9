import type { Command } from '../command.js';
import { findDaemon, parseArgs, request, rootOf, runVerb } from '../../live/client.js';
import { ExportWriter } from '../../live/export.js';
import type { ExportEntry } from '../../live/http.js';

export const exportCmd: Command = {
  name: 'export',
  synopsis: 'DIR [--under /sys/PATH] [--root DIR] [--json]',
  summary: "Copy the live sysfs into DIR/sys as plain files and symlinks (for SYSFS_ROOT=DIR lszcrypt)",
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('export', args, { values: ['--under'], positional: [1, 1] });
      const ri = findDaemon(rootOf(p));
      const w = new ExportWriter(p.positional[0]!);
      const res = await request(ri, 'POST', '/export', p.values.has('--under') ? { under: p.values.get('--under') } : {});
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (value) buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line) w.add(JSON.parse(line) as ExportEntry);
        }
        if (done) break;
      }
      const r = w.result;
      if (p.flags.has('--json')) io.out(JSON.stringify({ dir: p.positional[0], ...r }) + '\n');
      else io.out(`apsim export: ${r.dirs} directories, ${r.files} files, ${r.links} symlinks in ${p.positional[0]}/sys${r.unreadable ? ` (${r.unreadable} unreadable attributes left empty)` : ''}\n`);
      return 0;
    }),
};
