import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { parseArgs, rootOf, runVerb, UsageError } from '../../live/client.js';
import { up as runDaemon, UpError } from '../../live/daemon.js';
import { pidAlive, readRunInfo } from '../../live/runinfo.js';

export const up: Command = {
  name: 'up',
  synopsis: '[--profile NAME|FILE] [--root DIR] [--port N] [--listen ADDR] [--token T] [--state FILE] [--sync off|normal|full] [--detach]',
  summary: 'Boot a live simulated host: sysfs mounted through FUSE at DIR/sys, HTTP API, journaled state',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('up', args, {
        values: ['--profile', '--port', '--listen', '--token', '--state', '--sync', '--snapshot-every', '--snapshot-interval'],
        flags: ['--detach', '-d'],
      });
      const port = p.values.has('--port') ? Number(p.values.get('--port')) : 0;
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`apsim up: invalid --port '${p.values.get('--port')}'`);
      const listen = p.values.get('--listen');
      if (listen !== undefined && isIP(listen) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(listen))
        throw new UsageError(`apsim up: invalid --listen '${listen}' (an IP address or a host name; the port is --port)`);
      const sync = p.values.get('--sync') ?? 'off';
      if (sync !== 'off' && sync !== 'normal' && sync !== 'full') throw new UsageError(`apsim up: --sync must be off, normal or full`);
      const snap = p.values.has('--snapshot-every') ? Number(p.values.get('--snapshot-every')) : 1000;
      if (!Number.isInteger(snap) || snap < 1) throw new UsageError('apsim up: --snapshot-every must be a positive integer');
      const snapInt = p.values.has('--snapshot-interval') ? Number(p.values.get('--snapshot-interval')) : 30;
      if (!Number.isFinite(snapInt) || snapInt < 0) throw new UsageError('apsim up: --snapshot-interval must be a number of seconds >= 0');
      const root = path.resolve(rootOf(p));
      if (p.flags.has('--detach') || p.flags.has('-d')) return detach(root, args, io.out, io.err);
      try {
        const code = await runDaemon({
          root,
          port,
          sync,
          snapshotEvery: snap,
          snapshotInterval: snapInt,
          out: io.out,
          err: io.err,
          ...(p.values.has('--profile') ? { profile: p.values.get('--profile')! } : {}),
          ...(p.values.has('--state') ? { state: p.values.get('--state')! } : {}),
          ...(p.values.has('--listen') ? { listen: p.values.get('--listen')! } : {}),
          ...(p.values.has('--token') ? { token: p.values.get('--token')! } : {}),
        });
        // Nothing should be left, but never linger after a shutdown.
        setTimeout(() => process.exit(code), 200).unref();
        return code;
      } catch (e) {
        if (e instanceof UpError) {
          io.err(`apsim up: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    }),
};

/** Starts the daemon in the background (output to ROOT/apsim.log) and waits until it is ready. */
async function detach(root: string, args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  fs.mkdirSync(root, { recursive: true });
  const log = path.join(root, 'apsim.log');
  // The log is appended to across runs: a failure shows this run's lines only.
  const from = fs.existsSync(log) ? fs.statSync(log).size : 0;
  const fd = fs.openSync(log, 'a');
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'main.js');
  const rest = args.filter((a) => a !== '--detach' && a !== '-d');
  if (!rest.some((a) => a === '--root' || a.startsWith('--root='))) rest.push('--root', root);
  const c = spawn(process.execPath, [main, 'up', ...rest], { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited: number | null = null;
  c.on('exit', (code) => (exited = code ?? 1));
  c.unref();
  const t0 = Date.now();
  while (Date.now() - t0 < 120_000) {
    const ri = readRunInfo(root);
    if (ri && ri.pid === c.pid && pidAlive(ri.pid)) {
      out(`apsim: up (detached): sysfs at ${ri.mountpoint}, API http://${ri.address}:${ri.port}, pid ${ri.pid}, log ${log}\n`);
      return 0;
    }
    if (exited !== null) {
      const tail = fs.readFileSync(log).subarray(from).toString('utf8').trim().split('\n').slice(-5).join('\n');
      err(`apsim up: the daemon exited with status ${exited}:\n${tail}\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  err(`apsim up: the daemon (pid ${c.pid}) did not become ready within 120 s; see ${log}\n`);
  return 1;
}
