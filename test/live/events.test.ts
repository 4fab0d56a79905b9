// `apsim events`: the CLI side of the live host's event stream, as text (dmesg lines,
// uevents in udevadm-monitor form, JOURNAL and GUEST lines) and as JSON lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Daemon, MAIN, cli, sh, skipReason, tempRoot, waitFor } from './helpers.js';

const skip = skipReason();
const opt = { skip: skip ?? false };
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;
const U = '11111111-2222-3333-4444-555555555555';

before(async () => {
  if (skip) return;
  tmp = tempRoot('events');
  d = await new Daemon(tmp.root).ready();
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

/** `apsim events ARGS` (or another following command) running in the background, its stdout collected. */
function follow(...args: string[]): { out: () => string; stop: () => Promise<void> } {
  let out = '';
  const argv = args[0] === 'dmesg' ? args : ['events', ...args];
  const child: ChildProcess = spawn(process.execPath, [MAIN, ...argv, '--root', tmp.root], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    out: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

test('apsim events follows the live host: text lines per event type, JSON lines with --json, the type filter', opt, async () => {
  const text = follow();
  const json = follow('--type', 'journal,guest', '--json');
  try {
    // Both streams are connected once the daemon has a subscriber for each.
    await waitFor('both streams connected', async () => (await d.http('GET', '/status')).json.events.subscribers === 2);
    // apsim status, as text: every line of it.
    const st = await cli(['status', '--root', tmp.root]);
    assert.equal(st.code, 0, st.stderr);
    const lines = st.stdout.split('\n');
    assert.equal(lines.length, 9, st.stdout);
    assert.match(lines[0]!, new RegExp(`^apsim live host \\(pid ${d.pid}, up \\d+ s, virtual time \\d+\\.\\d{6} s\\)$`));
    assert.equal(lines[1], '  profile:   default (default: 11 cards, 374 queues)');
    assert.equal(lines[2], `  sysfs:     ${d.mnt} (mounted)`);
    assert.equal(lines[3], `  api:       ${d.url}`);
    assert.match(lines[4]!, /^  state: {5}\S+, journal at 0, 0 replayed at start$/);
    assert.match(lines[5]!, /^  kernel: {4}\d+ tasks, \d+ steps, 0 bug reports, dmesg seq \d+, uevent seqnum \d+$/);
    assert.match(lines[6]!, /^  fuse: {6}\d+ requests, \d+ errors, \d+ in flight, \d+ open files$/);
    assert.equal(lines[7], '  events:    2 connected streams (apsim events, GET /events)');
    assert.equal(lines[8], '');
    const r = await sh(`echo ${U} > ${d.mnt}/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create`);
    assert.equal(r.code, 0, r.stderr);
    const g = await cli(['guest', 'start', 'g1', '--mdev', U, '--root', tmp.root]);
    assert.equal(g.code, 0, g.stderr);
    await cli(['guest', 'stop', 'g1', '--root', tmp.root]);
    await waitFor('the text stream', () => text.out().includes('GUEST g1 stop\n') && text.out().includes('JOURNAL 3 '));
    await waitFor('the JSON stream', () => json.out().split('\n').length >= 6);
  } finally {
    await text.stop();
    await json.stop();
  }
  const t = text.out();
  // A uevent as udevadm monitor --kernel --property prints it, then a blank line.
  assert.match(t, new RegExp(`KERNEL\\[\\d+\\.\\d{6}\\] add      /devices/vfio_ap/matrix/${U} \\(mdev\\)\\nACTION=add\\nDEVPATH=/devices/vfio_ap/matrix/${U}\\nSUBSYSTEM=mdev\\nSEQNUM=\\d+\\n\\n`));
  assert.match(t, new RegExp(`^\\[ +\\d+\\.\\d{6}\\] vfio_ap_mdev ${U}: MDEV: created$`, 'm'));
  const tail = t.split('\n').filter((l) => /^(JOURNAL|GUEST) /.test(l));
  assert.deepEqual(tail, [
    `JOURNAL 1 {"kind":"sysfs","path":"/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create","data":"${U}\\n","uid":0,"comm":"sh"}`,
    `GUEST g1 start ${U}`,
    `JOURNAL 2 {"kind":"guest","op":"start","name":"g1","mdev":"${U}"}`,
    'GUEST g1 stop',
    'JOURNAL 3 {"kind":"guest","op":"stop","name":"g1"}',
  ]);
  // Only the types asked for, one JSON object per line.
  assert.deepEqual(
    json
      .out()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; seq?: number; action?: string }),
    [
      { type: 'journal', seq: 1, op: { kind: 'sysfs', path: '/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create', data: `${U}\n`, uid: 0, comm: 'sh' } },
      { type: 'guest', guest: 'g1', action: 'start', mdev: U },
      { type: 'journal', seq: 2, op: { kind: 'guest', op: 'start', name: 'g1', mdev: U } },
      { type: 'guest', guest: 'g1', action: 'stop' },
      { type: 'journal', seq: 3, op: { kind: 'guest', op: 'stop', name: 'g1' } },
    ],
  );
});

test('apsim events: a malformed --type is a usage error; without a daemon, a clear message', opt, async () => {
  const bad = await cli(['events', '--type', 'Bad!', '--root', tmp.root]);
  assert.deepEqual([bad.code, bad.stdout, bad.stderr], [2, '', "apsim events: invalid --type 'Bad!'\nRun 'apsim --help' for usage.\n"]);
  const none = tempRoot('events-none');
  try {
    const r = await cli(['events', '--root', none.root]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `apsim: no apsim daemon is running on ${none.root} (no ${none.root}/run.json); start one with 'apsim up --root ${none.root}'\n`);
  } finally {
    await none.cleanup();
  }
});

test('apsim dmesg -w: the ring buffer, then new messages as they come, none twice', opt, async () => {
  const U2 = '22222222-3333-4444-5555-666666666666';
  const f = follow('dmesg', '-w');
  try {
    await waitFor('the stream', async () => (await d.http('GET', '/status')).json.events.subscribers === 1);
    await waitFor('the dump', () => f.out().includes(`vfio_ap_mdev ${U}: MDEV: created\n`));
    const r = await sh(`echo ${U2} > ${d.mnt}/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create`);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the new message', () => f.out().includes(`vfio_ap_mdev ${U2}: MDEV: created\n`));
  } finally {
    await f.stop();
  }
  const lines = f.out().trimEnd().split('\n');
  // The kernel's ring buffer as far as it went (dump + stream: nothing lost or repeated).
  const all = (await cli(['dmesg', '--root', tmp.root])).stdout.trimEnd().split('\n');
  assert.deepEqual(all.slice(0, lines.length), lines);
  assert.equal(lines.filter((l) => l.endsWith(`${U2}: MDEV: created`)).length, 1);
});
