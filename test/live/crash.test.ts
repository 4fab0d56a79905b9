// kill -9 during a workload, repeatedly: after each restart the host's state must be
// exactly what the journal of acknowledged operations says. Checked three ways:
// (1) every operation a client saw succeed is in the journal, in order, and the
//     journal holds at most the one operation per client that was in flight;
// (2) the restarted daemon's observable state equals a fresh host that replays the
//     journal in this process;
// (3) the masks equal an independent discrete-time host given the same writes and
//     HMC operations through the library API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, cli, sh, skipReason, tempRoot, waitFor } from './helpers.js';
import { bootLiveHost, captureState, replayJournal, applyHmc, newGuestSet } from '../../src/live/state.js';
import type { JournalEntry } from '../../src/live/store.js';
import { builtinProfileJson } from '../../src/hw/index.js';
import { Host } from '../../src/host/index.js';

const skip = skipReason();
/** Frequent snapshots, so that replay verifies against several of them. */
const SNAP = ['--snapshot-every', '100', '--snapshot-interval', '0'];

/** Mask writes in a shell loop; each acknowledged write is appended to ACK after echo succeeded. */
const WORKLOAD = `
i=$START
while :; do
  i=$((i+1))
  n=$((i % 13)); f=apmask; [ $((i % 2)) = 0 ] && f=aqmask
  if [ $(((i / 2) % 2)) = 0 ]; then v="-$n"; else v="+$n"; fi
  echo "$v" > "$S/bus/ap/$f" || exit 0
  echo "$f $v" >> "$ACK"
done`;

function ackLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

test('kill -9 during a workload, three times: the restarted state is the acknowledged journal', { skip: skip ?? false, timeout: 240_000 }, async () => {
  const t = tempRoot('crash');
  let d: Daemon | null = null;
  try {
    const ackFile = join(t.root, 'acks');
    const hmcAcks: string[] = [];
    d = await new Daemon(t.root, SNAP).ready();
    for (const [round, k] of [[0, 7], [1, 19], [2, 31]] as const) {
      const before = ackLines(ackFile).length;
      const w = spawn('bash', ['-c', WORKLOAD], { env: { ...process.env, S: d.mnt, ACK: ackFile, START: String(round * 1000) }, stdio: 'ignore' });
      // HMC operations concurrently, over HTTP.
      let stopHmc = false;
      const dd = d;
      const hmcLoop = (async () => {
        for (let i = 0; !stopHmc; i++) {
          const op = { op: i % 2 === 0 ? 'remove-adapter' : 'add-adapter', id: 8 + (round % 2) };
          try {
            const r = await dd.http('POST', '/hmc', op);
            if (r.status === 200 && r.json.changed) hmcAcks.push(`${op.op} ${op.id}`);
          } catch {
            return; // the daemon is gone
          }
        }
      })();
      await waitFor(`${k} acknowledged writes`, () => ackLines(ackFile).length - before >= k);
      await d.kill9();
      stopHmc = true;
      await hmcLoop;
      await new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)));

      d = await new Daemon(t.root, SNAP).ready();
      assert.doesNotMatch(d.stderr, /warning/, d.stderr);
      const journal = (await d.http('GET', '/journal')).json.entries as JournalEntry[];
      assert.match(d.stderr, new RegExp(`replayed ${journal.length} journal entr`));
      assert.equal((await d.http('GET', '/status')).json.state.snapshot_mismatches, 0);

      // (1) acknowledged ⊆ journal, in order, plus at most one in-flight operation each.
      const jSysfs = journal.filter((e) => e.op.kind === 'sysfs').map((e) => (e.op.kind === 'sysfs' ? `${e.op.path.split('/').pop()} ${e.op.data.trim()}` : ''));
      const acks = ackLines(ackFile);
      assert.deepEqual(jSysfs.slice(0, acks.length), acks, 'every acknowledged write is journaled in order');
      assert.ok(jSysfs.length - acks.length <= round + 1, `at most one unacknowledged write per crash (${jSysfs.length} vs ${acks.length})`);
      const jHmc = journal.filter((e) => e.op.kind === 'hmc').map((e) => (e.op.kind === 'hmc' ? `${e.op.op} ${e.op.id}` : ''));
      assert.deepEqual(jHmc.slice(0, hmcAcks.length), hmcAcks, 'every acknowledged HMC operation is journaled in order');
      assert.ok(jHmc.length - hmcAcks.length <= round + 1);
      // Later rounds continue from the journal (the in-flight ones count as done).
      hmcAcks.splice(0, hmcAcks.length, ...jHmc);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(ackFile, jSysfs.map((l) => l + '\n').join(''));

      // (2) the daemon's state equals an in-process replay of the journal.
      const live = (await d.http('GET', '/state')).text;
      const ref = bootLiveHost(builtinProfileJson('default'));
      const rep = replayJournal(ref, journal);
      assert.deepEqual(rep.failed, []);
      assert.equal(live, captureState(ref));

      // (3) the masks equal an independent discrete-time host given the same operations.
      const h = Host.boot({ profile: 'default' });
      for (const e of journal) {
        if (e.op.kind === 'sysfs') h.write(e.op.path, e.op.data);
        else if (e.op.kind === 'hmc') {
          applyHmc(h.machine, e.op.op, e.op.id, e.op.on);
          h.advance(1e9);
        }
      }
      h.advance(1e9);
      const masks = (s: string) => s.split('\n').filter((l) => /^bus\/ap\/(apmask|aqmask|ap_adapter_mask)=/.test(l));
      assert.deepEqual(masks(live), [`bus/ap/apmask=${h.read('/sys/bus/ap/apmask').trim()}`, `bus/ap/aqmask=${h.read('/sys/bus/ap/aqmask').trim()}`, `bus/ap/ap_adapter_mask=${h.read('/sys/bus/ap/ap_adapter_mask').trim()}`].sort((a, b) => (masks(live).indexOf(a) - masks(live).indexOf(b))));
      assert.equal((await d.http('GET', '/sysfs?path=/sys/bus/ap/apmask')).json.data, h.read('/sys/bus/ap/apmask'));
    }
    // A clean shutdown takes a final snapshot; the next start verifies replay against it.
    const finalState = (await d.http('GET', '/state')).text;
    assert.equal(await d.stop(), 0);
    d = await new Daemon(t.root, SNAP).ready();
    const st = (await d.http('GET', '/status')).json;
    assert.ok(st.state.snapshots_verified > 0, 'replay was checked against a snapshot taken by the live host');
    assert.equal(st.state.snapshot_mismatches, 0);
    assert.equal((await d.http('GET', '/state')).text, finalState);
    assert.equal(await d.stop(), 0);
    d = null;
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.stack : String(e)}\ndaemon stderr:\n${d?.stderr}`);
  } finally {
    await d?.kill9();
    await t.cleanup();
  }
});

/** Toggles domain 0xab on the guest's mdev (each change reaches the running guest as CFG_CHG). */
const MDEV_WORKLOAD = `
i=0
while :; do
  i=$((i+1))
  if [ $((i % 2)) = 1 ]; then a=assign_domain; else a=unassign_domain; fi
  echo 0xab > "$S/devices/vfio_ap/matrix/$U/$a" || exit 0
  echo "$a" >> "$ACK"
done`;

test('kill -9 with a running guest while its mdev changes: the restart brings the guest back running on the same mdev', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const t = tempRoot('crash-guest');
  const U = 'cccccccc-1111-2222-3333-444444444444';
  const T = '$S/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
  let d: Daemon | null = null;
  try {
    d = await new Daemon(t.root).ready();
    const dd = d;
    const setup = await sh(`echo -5,-6 > $S/bus/ap/apmask && echo -4,-0xab > $S/bus/ap/aqmask && echo ${U} > ${T}/create && echo 5 > $S/devices/vfio_ap/matrix/${U}/assign_adapter && echo 4 > $S/devices/vfio_ap/matrix/${U}/assign_domain`, { shell: 'bash', env: { S: dd.mnt } });
    assert.equal(setup.code, 0, setup.stderr);
    const g = (...a: string[]) => cli(['guest', ...a, '--root', t.root]);
    assert.equal((await g('start', 'vm1', '--mdev', U)).code, 0);
    assert.equal((await g('device', 'del', 'vm1')).code, 0);
    assert.equal((await g('device', 'add', 'vm1', '--mdev', U)).code, 0);
    const ackFile = join(t.root, 'acks');
    const w = spawn('bash', ['-c', MDEV_WORKLOAD], { env: { ...process.env, S: dd.mnt, ACK: ackFile, U }, stdio: 'ignore' });
    await waitFor('20 acknowledged mdev changes', () => ackLines(ackFile).length >= 20);
    await waitFor('the guest to handle a CFG_CHG', async () => (await dd.http('GET', '/guests/view?name=vm1')).json.cfg_chg_handled > 0);
    await d.kill9();
    await new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)));

    d = await new Daemon(t.root).ready();
    assert.match(d.stderr, /apsim: restarted 1 guest from the journal: vm1\n/);
    assert.doesNotMatch(d.stderr, /warning/, d.stderr);
    const ls = JSON.parse((await g('ls', '--json')).stdout).guests;
    assert.deepEqual(
      ls.map((x: { name: string; mdev: string | null; running: boolean }) => [x.name, x.mdev, x.running]),
      [['vm1', U, true]],
    );
    const journal = (await d.http('GET', '/journal')).json.entries as JournalEntry[];
    const acks = ackLines(ackFile);
    const jm = journal.filter((e) => e.op.kind === 'sysfs' && e.op.path.endsWith('_domain') && e.op.data.trim() === '0xab').map((e) => (e.op.kind === 'sysfs' ? e.op.path.split('/').pop() : ''));
    assert.deepEqual(jm.slice(0, acks.length), acks, 'every acknowledged change is journaled in order');
    assert.ok(jm.length - acks.length <= 1);
    // The guest's CRYCB is the mdev's guest matrix after the last journaled change.
    const hasAb = jm[jm.length - 1] === 'assign_domain';
    const v = (await d.http('GET', '/guests/view?name=vm1')).json;
    assert.deepEqual(v.crycb.aqm, hasAb ? [4, 0xab] : [4]);
    assert.deepEqual(
      v.tapq.map((x: { apqn: string; rc: number }) => `${x.apqn} ${x.rc}`),
      hasAb ? ['05.0004 0', '05.00ab 0'] : ['05.0004 0'],
    );
    assert.equal((await d.http('GET', `/sysfs?path=/sys/devices/ap/card05/05.0004/status`)).json.data, 'in use\n');
    // The restarted state equals an in-process replay with the guests.
    const ref = bootLiveHost(builtinProfileJson('default'));
    const guests = newGuestSet(ref);
    const rep = replayJournal(ref, journal, new Map(), guests);
    assert.deepEqual(rep.failed, []);
    assert.equal((await d.http('GET', '/state')).text, captureState(ref));
    assert.deepEqual(guests.list().map((x) => [x.name, x.mdev]), [['vm1', U]]);
    assert.equal(await d.stop(), 0);
    d = null;
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.stack : String(e)}\ndaemon stderr:\n${d?.stderr}`);
  } finally {
    await d?.kill9();
    await t.cleanup();
  }
});
