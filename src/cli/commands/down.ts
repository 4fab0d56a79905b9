import * as path from 'node:path';
import * as fs from 'node:fs';
import type { Command } from '../command.js';
import { parseArgs, requestJson, rootOf, runVerb, ClientError } from '../../live/client.js';
import { pidAlive, readRunInfo, runInfoPath } from '../../live/runinfo.js';
import { mountAt, unmountStaleSync } from '../../live/fuse/session.js';

export const down: Command = {
  name: 'down',
  synopsis: '[--root DIR] [--json]',
  summary: 'Stop the live host: unmount its sysfs, final snapshot, exit (cleans up after a crashed daemon too)',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('down', args, {});
      const root = path.resolve(rootOf(p));
      const ri = readRunInfo(root);
      const mp = path.join(root, 'sys');
      const report = (o: Record<string, unknown>, text: string) => io.out(p.flags.has('--json') ? JSON.stringify(o) + '\n' : text);
      if (!ri || !pidAlive(ri.pid)) {
        // Nothing runs: clean up what a crashed daemon left behind.
        const m = mountAt(fs.existsSync(mp) ? fs.realpathSync(mp) : mp);
        const stale = m !== null && m.fstype === 'fuse.apsim';
        if (stale) unmountStaleSync(m.mountpoint);
        if (ri) fs.rmSync(runInfoPath(root), { force: true });
        if (!ri && !stale) throw new ClientError(`no apsim daemon is running on ${root}`);
        report({ stopped: false, cleaned: true, pid: ri?.pid ?? null }, `apsim: no daemon was running on ${root}${ri ? ` (pid ${ri.pid} had died)` : ''}; cleaned up${stale ? ` the stale mount at ${m.mountpoint}` : ''}\n`);
        return 0;
      }
      await requestJson(ri, 'POST', '/shutdown');
      const t0 = Date.now();
      while (pidAlive(ri.pid)) {
        if (Date.now() - t0 > 30_000) throw new ClientError(`the daemon (pid ${ri.pid}) did not exit within 30 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      report({ stopped: true, pid: ri.pid, mountpoint: ri.mountpoint }, `apsim: stopped (pid ${ri.pid}); ${ri.mountpoint} unmounted\n`);
      return 0;
    }),
};
