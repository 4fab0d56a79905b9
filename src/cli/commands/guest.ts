import type { Command } from '../command.js';
import { findDaemon, parseArgs, requestJson, rootOf, runVerb, UsageError } from '../../live/client.js';
import type { GuestSummary, GuestView } from '../../live/guests.js';

const USAGE = 'start NAME --mdev UUID | stop NAME | ls | device add NAME --mdev UUID | device del NAME | reset NAME | view NAME';

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** `guest view` as text: the CRYCB, TAPQ per APQN from vCPU 0, the guest's AP bus. */
export function formatView(v: GuestView): string {
  const ids = (xs: number[], w: number) => (xs.length ? xs.map((x) => x.toString(16).padStart(w, '0')).join(',') : '-');
  let s = `guest ${v.name}: ${v.mdev ? `vfio-ap device ${v.mdev}` : 'no vfio-ap device'}\n`;
  s += `CRYCB: adapters ${ids(v.crycb.apm, 2)}  usage domains ${ids(v.crycb.aqm, 4)}  control domains ${ids(v.crycb.adm, 4)}\n`;
  if (v.tapq.length) {
    s += 'APQN     TAPQ (vCPU 0)\n';
    for (const t of v.tapq) {
      const what =
        t.pgm !== undefined ? `program interruption ${t.pgm}` : t.exit !== undefined ? `exit to userspace ${t.exit}` : `cc ${t.cc} rc ${t.rc === null ? '-' : hex2(t.rc)}${t.flags ? ` ${t.flags}` : ''}`;
      s += `${t.apqn}  ${what}\n`;
    }
  }
  s += `AP bus (${v.ap_bus.scans} scan${v.ap_bus.scans === 1 ? '' : 's'}): ${v.ap_bus.devices.length ? v.ap_bus.devices.join(' ') : '(no devices)'}\n`;
  s += `notifications handled: ${v.cfg_chg_handled} cfg_chg, ${v.req_handled} req\n`;
  return s;
}

export const guest: Command = {
  name: 'guest',
  synopsis: `${USAGE} [--root DIR] [--json]`,
  summary: 'Guests of the live host: QEMU with a vfio-ap device (journaled: restarted after a crash or restart)',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('guest', args, { values: ['--mdev'], positional: [1, 3] });
      const [verb, a1, a2] = p.positional as [string, string | undefined, string | undefined];
      const json = p.flags.has('--json');
      const mdev = p.values.get('--mdev');
      const need = (n: number, what: string) => {
        if (p.positional.length !== n) throw new UsageError(`apsim guest: usage: apsim guest ${what}`);
      };
      const needMdev = (what: string): string => {
        if (mdev === undefined) throw new UsageError(`apsim guest: ${what} needs --mdev UUID`);
        return mdev;
      };
      const noMdev = () => {
        if (mdev !== undefined) throw new UsageError(`apsim guest ${verb}: --mdev is not valid here`);
      };
      const ri = () => findDaemon(rootOf(p));
      const done = (r: unknown, text: string) => {
        io.out(json ? JSON.stringify(r) + '\n' : text);
        return 0;
      };
      switch (verb) {
        case 'start': {
          need(2, 'start NAME --mdev UUID');
          const r = await requestJson<GuestSummary>(ri(), 'POST', '/guests', { name: a1, mdev: needMdev('start') });
          return done(r, `apsim guest: started ${a1} with vfio-ap device ${r.mdev}\n`);
        }
        case 'stop': {
          need(2, 'stop NAME');
          noMdev();
          const r = await requestJson(ri(), 'DELETE', `/guests?name=${encodeURIComponent(a1!)}`);
          return done(r, `apsim guest: stopped ${a1}\n`);
        }
        case 'ls': {
          need(1, 'ls');
          noMdev();
          const r = await requestJson<{ guests: GuestSummary[] }>(ri(), 'GET', '/guests');
          if (json) return done(r, '');
          const rows = [['NAME', 'MDEV', 'AP-DEVICES', 'CFG_CHG', 'REQ', 'STARTED']];
          for (const g of r.guests) rows.push([g.name, g.mdev ?? '-', String(g.ap_devices), String(g.cfg_chg_handled), String(g.req_handled), g.started]);
          const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
          io.out(rows.map((x) => x.map((c, i) => (i === x.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n') + '\n');
          return 0;
        }
        case 'device': {
          if (a1 === 'add') {
            need(3, 'device add NAME --mdev UUID');
            const r = await requestJson<GuestSummary>(ri(), 'POST', '/guests/device', { name: a2, mdev: needMdev('device add') });
            return done(r, `apsim guest: ${a2}: vfio-ap device ${r.mdev} added\n`);
          }
          if (a1 === 'del') {
            need(3, 'device del NAME');
            noMdev();
            const r = await requestJson(ri(), 'DELETE', `/guests/device?name=${encodeURIComponent(a2!)}`);
            return done(r, `apsim guest: ${a2}: vfio-ap device removed\n`);
          }
          throw new UsageError(`apsim guest: usage: apsim guest device add NAME --mdev UUID | device del NAME`);
        }
        case 'reset': {
          need(2, 'reset NAME');
          noMdev();
          const r = await requestJson(ri(), 'POST', '/guests/reset', { name: a1 });
          return done(r, `apsim guest: ${a1}: system_reset done\n`);
        }
        case 'view': {
          need(2, 'view NAME');
          noMdev();
          const r = await requestJson<GuestView>(ri(), 'GET', `/guests/view?name=${encodeURIComponent(a1!)}`);
          return done(r, formatView(r));
        }
        default:
          throw new UsageError(`apsim guest: unknown subcommand '${verb}' (${USAGE})`);
      }
    }),
};
