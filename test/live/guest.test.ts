// Guests in the live host: `apsim guest` start/stop/ls/device add|del/reset/view, the
// HTTP endpoints with their validation, guest events on the SSE stream (including the
// REQ and CFG_CHG notifications QEMU handles), and persistence: after kill -9 the
// restarted daemon brings the guests back running with the devices they had.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, cli, sh, skipReason, tempRoot, waitFor } from './helpers.js';

const skip = skipReason();
const opt = { skip: skip ?? false };
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;
const U1 = '11111111-2222-3333-4444-555555555555';
const U2 = '22222222-3333-4444-5555-666666666666';
const U3 = '33333333-4444-5555-6666-777777777777';
const T = '$S/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
const M = (u: string) => `$S/devices/vfio_ap/matrix/${u}`;

const run = (script: string) => sh(script, { shell: 'bash', env: { S: d.mnt } });
const g = (...args: string[]) => cli(['guest', ...args, '--root', tmp.root]);

before(async () => {
  if (skip) return;
  tmp = tempRoot('guest');
  d = await new Daemon(tmp.root).ready();
  const r = await run(
    `echo -5,-6 > $S/bus/ap/apmask && echo -4,-0xab > $S/bus/ap/aqmask && ` +
      `echo ${U1} > ${T}/create && echo 5 > ${M(U1)}/assign_adapter && echo 4 > ${M(U1)}/assign_domain && echo 4 > ${M(U1)}/assign_control_domain && ` +
      `echo ${U2} > ${T}/create && echo 6 > ${M(U2)}/assign_adapter && echo 0xab > ${M(U2)}/assign_domain && ` +
      `echo ${U3} > ${T}/create`,
  );
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

/** Collects SSE events of the given types until stop() is called. */
function sse(types: string): { events: () => Array<{ event: string; data: any }>; stop: () => Promise<void> } {
  const got: Array<{ event: string; data: any }> = [];
  const ac = new AbortController();
  const p = (async () => {
    const res = await fetch(`${d.url}/events?types=${types}`, { signal: ac.signal });
    const reader = res.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += new TextDecoder().decode(value);
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (ev && data) got.push({ event: ev[1]!, data: JSON.parse(data[1]!) });
      }
    }
  })().catch(() => {});
  return {
    events: () => got,
    stop: async () => {
      ac.abort();
      await p;
    },
  };
}

test('guest start, view, ls and the errors: usage, unknown guest, name taken, mdev missing, QEMU refusing', opt, async () => {
  const s = await g('start', 'vm1', '--mdev', U1);
  assert.deepEqual([s.code, s.stdout, s.stderr], [0, `apsim guest: started vm1 with vfio-ap device ${U1}\n`, '']);
  const v = await g('view', 'vm1');
  assert.equal(v.code, 0, v.stderr);
  assert.equal(
    v.stdout,
    `guest vm1: vfio-ap device ${U1}\n` +
      'CRYCB: adapters 05  usage domains 0004  control domains 0004\n' +
      'APQN     TAPQ (vCPU 0)\n' +
      '05.0004  cc 0 rc 00 E\n' +
      'AP bus (1 scan): card05 05.0004\n' +
      'notifications handled: 0 cfg_chg, 0 req\n',
  );
  const vj = JSON.parse((await g('view', 'vm1', '--json')).stdout);
  assert.deepEqual(vj.tapq, [{ apqn: '05.0004', cc: 0, rc: 0, flags: 'E' }]);
  assert.deepEqual(vj.crycb, { apm: [5], aqm: [4], adm: [4] });
  const cases: Array<[string[], number, string]> = [
    [['start', 'vm1', '--mdev', U2], 1, "apsim: a guest named 'vm1' is already running\n"],
    [['start', 'vm2', '--mdev', U1], 1, `apsim: qemu-system-s390x: -device vfio-ap,id=vfio_ap0,sysfsdev=/sys/bus/mdev/devices/${U1}: vfio ${U1}: failed to open /dev/vfio/0: Device or resource busy\n`],
    [['device', 'add', 'vm1', '--mdev', U2], 1, "apsim: qemu-system-s390x: No 'ap-bus' bus found for device 'vfio-ap'\n"],
    [['start', 'vm3', '--mdev', '99999999-2222-3333-4444-555555555555'], 1, 'apsim: mdev 99999999-2222-3333-4444-555555555555 does not exist (no /sys/bus/mdev/devices/99999999-2222-3333-4444-555555555555)\n'],
    [['start', 'vm3', '--mdev', 'xyz'], 1, 'apsim: invalid mdev UUID "xyz" (lower-case 8-4-4-4-12 hex)\n'],
    [['start', 'bad/name', '--mdev', U2], 1, `apsim: invalid guest name "bad/name" (1-64 characters: letters, digits, '_', '.', '-'; starting with a letter or digit)\n`],
    [['view', 'nope'], 1, "apsim: no guest named 'nope' (guests: vm1)\n"],
    [['stop', 'nope'], 1, "apsim: no guest named 'nope' (guests: vm1)\n"],
    [['start', 'vm3'], 2, "apsim guest: start needs --mdev UUID\nRun 'apsim --help' for usage.\n"],
    [['frobnicate', 'x'], 2, "apsim guest: unknown subcommand 'frobnicate' (start NAME --mdev UUID | stop NAME | ls | device add NAME --mdev UUID | device del NAME | reset NAME | view NAME)\nRun 'apsim --help' for usage.\n"],
  ];
  for (const [args, code, err] of cases) {
    const r = await g(...args);
    assert.deepEqual([r.code, r.stderr], [code, err], args.join(' '));
  }
  const ls = await g('ls', '--json');
  assert.deepEqual(
    JSON.parse(ls.stdout).guests.map((x: { name: string; mdev: string; running: boolean }) => [x.name, x.mdev, x.running]),
    [['vm1', U1, true]],
  );
  const lt = await g('ls');
  assert.match(lt.stdout, new RegExp(`^NAME +MDEV +AP-DEVICES +CFG_CHG +REQ +STARTED\nvm1 +${U1} +2 +0 +0 +\\d{4}-`));
});

test('HTTP: guest endpoints validate their input; OpenAPI lists them', opt, async () => {
  const cases: Array<[string, string, unknown, number, RegExp]> = [
    ['POST', '/guests', { name: 'x' }, 400, /field 'mdev'/],
    ['POST', '/guests', { mdev: U2 }, 400, /field 'name'/],
    ['POST', '/guests', { name: 'x', mdev: U2, smp: 4 }, 400, /unknown field 'smp'/],
    ['DELETE', '/guests', undefined, 400, /missing query parameter 'name'/],
    ['GET', '/guests/view?name=nope', undefined, 404, /no guest named 'nope'/],
    ['GET', '/guests/view?name=vm1&x=1', undefined, 400, /unknown query parameter 'x'/],
    ['PUT', '/guests', undefined, 405, /PUT is not allowed on \/guests/],
    ['POST', '/guests/device', { name: 'nope', mdev: U2 }, 404, /no guest named 'nope'/],
    ['POST', '/guests/reset', { name: 5 }, 400, /field 'name'/],
  ];
  for (const [method, path, body, status, msg] of cases) {
    const r = await d.http(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    assert.match(r.json?.error ?? '', msg, `${method} ${path}`);
  }
  const o = await d.http('GET', '/openapi.json');
  for (const p of ['/guests', '/guests/view', '/guests/device', '/guests/reset']) assert.ok(o.json.paths[p], p);
});

test('SSE guest events: start, cfg_chg from an assignment, reset, device del/add, req when the host removes the mdev, stop', opt, async () => {
  const ev = sse('guest');
  await waitFor('the stream', async () => (await d.http('GET', '/status')).json.events.subscribers >= 1);
  assert.equal((await g('start', 'vm2', '--mdev', U2)).code, 0);
  const a = await run(`echo 6 > ${M(U1)}/assign_adapter`);
  assert.equal(a.code, 0, a.stderr);
  await waitFor('cfg_chg', () => ev.events().some((e) => e.data.action === 'cfg_chg'));
  assert.equal((await g('reset', 'vm1')).stdout, 'apsim guest: vm1: system_reset done\n');
  assert.equal((await g('device', 'del', 'vm1')).stdout, 'apsim guest: vm1: vfio-ap device removed\n');
  const again = await g('device', 'del', 'vm1');
  assert.deepEqual([again.code, again.stderr], [1, "apsim: qemu-system-s390x: Device 'vfio_ap0' not found (guest 'vm1' has no vfio-ap device)\n"]);
  assert.equal((await g('device', 'add', 'vm1', '--mdev', U1)).stdout, `apsim guest: vm1: vfio-ap device ${U1} added\n`);
  // The host removes U2 under vm2: vfio_ap_mdev_request() clears the guest's matrix
  // (CFG_CHG) and signals REQ; QEMU unplugs the device.
  const rm = await run(`echo 1 > ${M(U2)}/remove`);
  assert.equal(rm.code, 0, rm.stderr);
  await waitFor('req', () => ev.events().some((e) => e.data.action === 'req'));
  const ls = JSON.parse((await g('ls', '--json')).stdout).guests;
  assert.deepEqual(
    ls.map((x: { name: string; mdev: string | null }) => [x.name, x.mdev]),
    [
      ['vm1', U1],
      ['vm2', null],
    ],
  );
  assert.equal((await g('stop', 'vm2')).stdout, 'apsim guest: stopped vm2\n');
  await waitFor('stop', () => ev.events().some((e) => e.data.action === 'stop'));
  await ev.stop();
  assert.deepEqual(
    ev.events().map((e) => [e.event, e.data.guest, e.data.action, e.data.mdev ?? null]),
    [
      ['guest', 'vm2', 'start', U2],
      ['guest', 'vm1', 'cfg_chg', U1],
      ['guest', 'vm1', 'reset', null],
      ['guest', 'vm1', 'device_del', U1],
      ['guest', 'vm1', 'device_add', U1],
      ['guest', 'vm2', 'cfg_chg', U2],
      ['guest', 'vm2', 'req', U2],
      ['guest', 'vm2', 'stop', null],
    ],
  );
  const j = await d.http('GET', '/journal');
  assert.deepEqual(
    j.json.entries.filter((e: { op: { kind: string } }) => e.op.kind === 'guest').map((e: { op: unknown }) => e.op),
    [
      { kind: 'guest', op: 'start', name: 'vm1', mdev: U1 },
      { kind: 'guest', op: 'start', name: 'vm2', mdev: U2 },
      { kind: 'guest', op: 'reset', name: 'vm1' },
      { kind: 'guest', op: 'device-del', name: 'vm1' },
      { kind: 'guest', op: 'device-add', name: 'vm1', mdev: U1 },
      { kind: 'guest', op: 'stop', name: 'vm2' },
    ],
  );
});

test('kill -9 with a running guest: the restart brings it back running with its device and view', opt, async () => {
  const s = await g('start', 'vm3', '--mdev', U3);
  assert.equal(s.code, 0, s.stderr);
  const before = (await g('view', 'vm1')).stdout;
  await d.kill9();
  d = await new Daemon(tmp.root).ready();
  assert.match(d.stderr, /apsim: restarted 2 guests from the journal: vm1, vm3\n/);
  assert.doesNotMatch(d.stderr, /warning/);
  const ls = JSON.parse((await g('ls', '--json')).stdout).guests;
  assert.deepEqual(
    ls.map((x: { name: string; mdev: string | null; running: boolean }) => [x.name, x.mdev, x.running]),
    [
      ['vm1', U1, true],
      ['vm3', U3, true],
    ],
  );
  const after = (await g('view', 'vm1')).stdout;
  // Freshly started: the AP bus scanned once, no notification handled yet.
  assert.equal(after.replace(/AP bus \(\d+ scans?\)/, 'AP bus'), before.replace(/AP bus \(\d+ scans?\)/, 'AP bus').replace(/notifications handled: .*/, 'notifications handled: 0 cfg_chg, 0 req'));
  assert.match(after, /^05\.0004  cc 0 rc 00 E\n06\.0004  cc 0 rc 00 E\n/m);
  assert.equal((await g('stop', 'vm3')).code, 0);
});
