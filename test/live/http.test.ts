// The HTTP API: validation (clear 4xx for everything malformed, no path traversal),
// sysfs access with errnos, HMC operations with the rescan, dmesg, the SSE stream,
// the OpenAPI document, export, and the token when listening beyond loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, cli, skipReason, tempRoot, waitFor } from './helpers.js';

const skip = skipReason();
const opt = { skip: skip ?? false };
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;

before(async () => {
  if (skip) return;
  tmp = tempRoot('http');
  d = await new Daemon(tmp.root).ready();
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

test('malformed requests get clear 4xx answers', opt, async () => {
  const cases: Array<[string, string, unknown, number, RegExp, Record<string, string>?]> = [
    ['GET', '/nope', undefined, 404, /no such endpoint: \/nope/],
    ['DELETE', '/status', undefined, 405, /DELETE is not allowed on \/status/],
    ['GET', '/sysfs', undefined, 400, /missing query parameter 'path'/],
    ['GET', '/sysfs?path=/etc/passwd', undefined, 400, /below \/sys/],
    ['GET', '/sysfs?path=/sys/../etc/passwd', undefined, 400, /normalised/],
    ['GET', '/sysfs?path=/sys/bus//ap', undefined, 400, /normalised/],
    ['GET', '/sysfs?path=/sys/bus/ap/', undefined, 400, /normalised/],
    ['GET', '/sysfs?path=relative', undefined, 400, /below \/sys/],
    ['GET', '/sysfs?path=/sys/bus/ap/apmask&x=1', undefined, 400, /unknown query parameter 'x'/],
    ['GET', '/sysfs?path=/sys/nope', undefined, 404, /No such file or directory/],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', '{"data": 5}', 400, /field 'data' \(string\) is required/],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', '{"data": "-5", "extra": 1}', 400, /unknown field 'extra'/],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', '{oops', 400, /invalid JSON body/],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', '[1]', 400, /must be a JSON object/],
    ['PUT', '/sysfs?path=/sys/bus/ap', '{"data": "x"}', 400, /is a directory/],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', 'x', 415, /Content-Type/, { 'content-type': 'application/xml' }],
    ['PUT', '/sysfs?path=/sys/bus/ap/apmask', JSON.stringify({ data: 'x'.repeat(70_000) }), 413, /over 65536 bytes/],
    ['POST', '/hmc', { op: 'explode', id: 1 }, 400, /field 'op' must be one of/],
    ['POST', '/hmc', { op: 'remove-adapter', id: -1 }, 400, /'id' must be an integer 0\.\.255/],
    ['POST', '/hmc', { op: 'remove-adapter', id: 1.5 }, 400, /'id' must be an integer/],
    ['POST', '/hmc', { op: 'checkstop', id: 5 }, 400, /field 'on' \(boolean\) is required/],
    ['POST', '/hmc', { op: 'remove-adapter', id: 5, on: true }, 400, /only valid for card-config and checkstop/],
    ['POST', '/hmc', { op: 'remove-adapter', id: 0x20 }, 422, /adapter 32 is not installed/],
    ['GET', '/dmesg?since=-1', undefined, 400, /non-negative integer/],
    ['GET', '/dmesg?format=xml', undefined, 400, /format/],
    ['GET', '/events?types=dmesg,bogus', undefined, 400, /unknown event type 'bogus'/],
    ['POST', '/export', { under: '/sys/../..' }, 400, /normalised/],
  ];
  for (const [method, path, body, status, msg, headers] of cases) {
    const r = await d.http(method, path, body, headers);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    assert.match(r.json?.error ?? '', msg, `${method} ${path}: ${r.text}`);
  }
  const j = await d.http('GET', '/journal');
  assert.equal(j.json.entries.length, 0, 'nothing was journaled');
});

test('sysfs over HTTP: files, directories, links, writes with errnos', opt, async () => {
  const f = await d.http('GET', '/sysfs?path=/sys/bus/ap/apmask');
  assert.deepEqual(f.json, { path: '/sys/bus/ap/apmask', type: 'file', mode: '0644', data: `0x${'f'.repeat(64)}\n` });
  const l = await d.http('GET', '/sysfs?path=/sys/bus/ap/devices/05.0004');
  assert.deepEqual(l.json, { path: '/sys/bus/ap/devices/05.0004', type: 'link', target: '../../../devices/ap/card05/05.0004' });
  const dir = await d.http('GET', '/sysfs?path=/sys/bus/ap');
  assert.equal(dir.json.type, 'dir');
  assert.ok(dir.json.entries.includes('apmask'));
  const wo = await d.http('GET', '/sysfs?path=/sys/bus/ap/drivers_probe');
  assert.equal(wo.status, 403);
  assert.equal(wo.json.code, 'EACCES');
  const bad = await d.http('PUT', '/sysfs?path=/sys/bus/ap/apmask', { data: '+256' });
  assert.equal(bad.status, 422);
  assert.deepEqual([bad.json.errno, bad.json.code, bad.json.message], [22, 'EINVAL', 'Invalid argument']);
  const ok = await d.http('PUT', '/sysfs?path=/sys/bus/ap/apmask', { data: '-5\n' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.count, 3);
  assert.equal(ok.json.journal_seq, 1);
  const raw = await d.http('PUT', '/sysfs?path=/sys/bus/ap/apmask', '+5', { 'content-type': 'text/plain' });
  assert.equal(raw.status, 200, raw.text);
  assert.equal((await d.http('GET', '/sysfs?path=/sys/bus/ap/apmask')).json.data, `0x${'f'.repeat(64)}\n`);
  const j = await d.http('GET', '/journal');
  assert.deepEqual(
    j.json.entries.map((e: { op: unknown }) => e.op),
    [
      { kind: 'sysfs', path: '/sys/bus/ap/apmask', data: '-5\n', uid: 0, comm: 'apsim-http' },
      { kind: 'sysfs', path: '/sys/bus/ap/apmask', data: '+5', uid: 0, comm: 'apsim-http' },
    ],
  );
});

test('HMC operations run the AP bus rescan; SSE streams uevents, dmesg and journal entries', opt, async () => {
  const res = await fetch(`${d.url}/events?types=uevent,journal`);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.getReader();
  let text = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += new TextDecoder().decode(value);
    }
  })();
  const r = await d.http('POST', '/hmc', { op: 'remove-adapter', id: 6 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.changed, r.json.journal_seq], [true, 3]);
  const again = await d.http('POST', '/hmc', { op: 'remove-adapter', id: 6 });
  assert.deepEqual([again.json.changed, again.json.journal_seq], [false, null]);
  await waitFor('card06 to go', async () => (await d.http('GET', '/sysfs?path=/sys/devices/ap/card06')).status === 404);
  await waitFor('the remove uevent', () => /event: uevent\ndata: .*"action":"remove","devpath":"\/devices\/ap\/card06"/.test(text));
  assert.match(text, /event: journal\ndata: \{"type":"journal","seq":3,"op":\{"kind":"hmc","op":"remove-adapter","id":6\}\}/);
  const back = await cli(['hmc', 'add-adapter', '6', '--root', tmp.root, '--json']);
  assert.equal(back.code, 0, back.stderr);
  assert.equal(JSON.parse(back.stdout).changed, true);
  await waitFor('card06 to return', async () => (await d.http('GET', '/sysfs?path=/sys/devices/ap/card06/05.0004')).status !== 0 && (await d.http('GET', '/sysfs?path=/sys/devices/ap/card06/type')).status === 200);
  await reader.cancel();
  await pump.catch(() => {});
  const dm = await cli(['dmesg', '--root', tmp.root]);
  assert.equal(dm.code, 0);
  assert.match(dm.stdout, /^\[ +\d+\.\d{6}\] /m);
});

test('status, openapi and export', opt, async () => {
  const s = await d.http('GET', '/status');
  assert.equal(s.json.pid, d.pid);
  assert.equal(s.json.mounted, true);
  const o = await d.http('GET', '/openapi.json');
  assert.equal(o.json.openapi, '3.1.0');
  for (const p of ['/status', '/sysfs', '/hmc', '/dmesg', '/events', '/export']) assert.ok(o.json.paths[p], p);
  const out = join(tmp.root, 'export');
  const e = await cli(['export', out, '--root', tmp.root]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /\d+ directories, \d+ files, \d+ symlinks/);
  assert.equal(readFileSync(join(out, 'sys/bus/ap/apmask'), 'utf8'), `0x${'f'.repeat(64)}\n`);
  assert.equal(readFileSync(join(out, 'sys/devices/ap/card05/type'), 'utf8'), 'CEX8C\n');
  assert.equal(readlinkSync(join(out, 'sys/bus/ap/devices/05.0004')), '../../../devices/ap/card05/05.0004');
  assert.equal(readFileSync(join(out, 'sys/bus/ap/devices/05.0004/online'), 'utf8'), '1\n', 'links resolve inside the export');
  assert.equal(statSync(join(out, 'sys/bus/ap/drivers_probe')).mode & 0o777, 0o200);
  const again = await cli(['export', out, '--root', tmp.root]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists and is not empty/);
});

test('listening beyond loopback requires the token from run.json', opt, async () => {
  const t = tempRoot('token');
  try {
    const d2 = new Daemon(t.root, ['--listen', '0.0.0.0']);
    await waitFor('the daemon', () => /API http:\/\/0\.0\.0\.0:(\d+)/.exec(d2.stdout) ?? (d2.exitCode !== null ? (() => { throw new Error(d2.stderr); })() : null)).then((m) => (d2.port = Number(m[1])));
    const no = await d2.http('GET', '/status');
    assert.equal(no.status, 401);
    const ri = JSON.parse(readFileSync(join(t.root, 'run.json'), 'utf8')) as { token: string };
    assert.equal(statSync(join(t.root, 'run.json')).mode & 0o777, 0o600);
    const yes = await d2.http('GET', '/status', undefined, { authorization: `Bearer ${ri.token}` });
    assert.equal(yes.status, 200);
    const viaCli = await cli(['status', '--root', t.root, '--json']);
    assert.equal(viaCli.code, 0, viaCli.stderr);
    assert.equal(await d2.stop(), 0);
  } finally {
    await t.cleanup();
  }
});
