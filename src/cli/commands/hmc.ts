import type { Command } from '../command.js';
import { findDaemon, parseArgs, parseId, requestJson, rootOf, runVerb, UsageError } from '../../live/client.js';

const SIMPLE = ['add-adapter', 'remove-adapter', 'add-usage-domain', 'remove-usage-domain', 'add-control-domain', 'remove-control-domain'];
const ONOFF: Record<string, string> = { config: 'card-config', 'card-config': 'card-config', checkstop: 'checkstop' };

export const hmc: Command = {
  name: 'hmc',
  synopsis: '<add|remove>-<adapter|usage-domain|control-domain> ID | config ID on|off | checkstop ID on|off [--root DIR] [--json]',
  summary: 'HMC/SE operation on the live machine (the AP bus sees the configuration change and rescans)',
  run: (args, io) =>
    runVerb(io.err, async () => {
      const p = parseArgs('hmc', args, { positional: [2, 3] });
      const [verb, idStr, onStr] = p.positional as [string, string, string | undefined];
      let body: { op: string; id: number; on?: boolean };
      if (SIMPLE.includes(verb)) {
        if (onStr !== undefined) throw new UsageError(`apsim hmc: ${verb} takes one id`);
        body = { op: verb, id: parseId(idStr, 'id') };
      } else if (ONOFF[verb]) {
        if (onStr !== 'on' && onStr !== 'off') throw new UsageError(`apsim hmc: ${verb} needs on or off`);
        body = { op: ONOFF[verb]!, id: parseId(idStr, 'adapter id'), on: onStr === 'on' };
      } else throw new UsageError(`apsim hmc: unknown operation '${verb}' (${[...SIMPLE, 'config', 'checkstop'].join(', ')})`);
      const ri = findDaemon(rootOf(p));
      const r = await requestJson<{ changed: boolean; journal_seq: number | null }>(ri, 'POST', '/hmc', body);
      if (p.flags.has('--json')) io.out(JSON.stringify(r) + '\n');
      else io.out(r.changed ? `apsim hmc: ${verb} ${idStr}${onStr ? ' ' + onStr : ''}: done\n` : `apsim hmc: ${verb} ${idStr}${onStr ? ' ' + onStr : ''}: no change (already so)\n`);
      return 0;
    }),
};
