// Non-root users: the VFS checks the kernfs modes (default_permissions): a non-root
// write to a root-owned 0644 or 0200 attribute fails with EACCES, reads of 0444/0644
// work, and nothing changes. Root is refused writes to 0444 files by the kernfs rule.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { Daemon, sh, skipReason, tempRoot } from './helpers.js';

const skip = skipReason();
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;
const asNobody = (script: string) => sh(`setpriv --reuid=65534 --regid=65534 --clear-groups bash -c ${JSON.stringify(script)}`, { env: { S: d.mnt } });

before(async () => {
  if (skip) return;
  tmp = tempRoot('perm');
  chmodSync(tmp.root, 0o755); // mkdtemp makes it 0700: let others reach the mount
  d = await new Daemon(tmp.root).ready();
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

test('a non-root user reads attributes but cannot write them', { skip: skip ?? false }, async () => {
  const r = await asNobody('id -u; cat $S/bus/ap/apmask; ls $S/devices/ap | head -1');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `65534\n0x${'f'.repeat(64)}\ncard00\n`);
  for (const [cmd, what] of [
    ['echo -5 > $S/bus/ap/apmask', '0644 root-owned'],
    ['echo 1 > $S/bus/ap/drivers_probe', '0200'],
    ['echo 1 > $S/bus/ap/scans', '0644'],
    ['echo add > $S/bus/ap/uevent', '0200'],
    ['cat $S/bus/ap/drivers_probe', '0200 (read)'],
  ] as const) {
    const w = await asNobody(cmd);
    assert.notEqual(w.code, 0, what);
    assert.match(w.stderr, /Permission denied/, `${what}: ${w.stderr}`);
  }
  const m = await sh('cat $S/bus/ap/apmask', { env: { S: d.mnt } });
  assert.equal(m.stdout, `0x${'f'.repeat(64)}\n`, 'nothing changed');
  const j = await d.http('GET', '/journal');
  assert.equal(j.json.entries.length, 0, 'refused writes are not journaled');
});

test('root is refused writes to read-only attributes (kernfs open check)', { skip: skip ?? false }, async () => {
  const w = await sh('echo 1 > $S/bus/ap/ap_adapter_mask', { shell: 'bash', env: { S: d.mnt } });
  assert.match(w.stderr, /Permission denied/);
});

test('chmod/chown through the mount: kernfs keeps them, the VFS honours them, the journal brings them back after a restart', { skip: skip ?? false, timeout: 120_000 }, async () => {
  const t = tempRoot('chmod');
  chmodSync(t.root, 0o755);
  let dd: Daemon | null = null;
  try {
    dd = await new Daemon(t.root).ready();
    const env = { S: dd.mnt };
    const st = async () => (await sh('stat -c "%a %u %g" $S/bus/ap/apmask', { env })).stdout;
    const nobody = (script: string) => sh(`setpriv --reuid=65534 --regid=65534 --clear-groups bash -c ${JSON.stringify(script)}`, { env });
    // Root locks the mask: its own writes fail (kernfs' open check), until it unlocks it.
    let r = await sh('chmod 444 $S/bus/ap/apmask && echo -5 > $S/bus/ap/apmask', { shell: 'bash', env });
    assert.match(r.stderr, /Permission denied/);
    assert.equal(await st(), '444 0 0\n');
    // Handed to nobody: the owner writes and chmods, but cannot give it away.
    r = await sh('chmod 644 $S/bus/ap/apmask && chown 65534:65534 $S/bus/ap/apmask', { env });
    assert.equal(r.code, 0, r.stderr);
    r = await nobody('echo -5 > $S/bus/ap/apmask && chmod 600 $S/bus/ap/apmask');
    assert.equal(r.code, 0, r.stderr);
    r = await nobody('chown 0 $S/bus/ap/apmask');
    assert.match(r.stderr, /Operation not permitted/);
    r = await nobody('chmod 644 $S/bus/ap/devices');
    assert.match(r.stderr, /Operation not permitted/);
    assert.equal(await st(), '600 65534 65534\n');
    const j = await dd.http('GET', '/journal');
    assert.deepEqual(
      j.json.entries.map((e: { op: Record<string, unknown> }) => e.op),
      [
        { kind: 'setattr', path: '/sys/bus/ap/apmask', mode: 0o444, uid: 0, gid: 0 },
        { kind: 'setattr', path: '/sys/bus/ap/apmask', mode: 0o644, uid: 0, gid: 0 },
        { kind: 'setattr', path: '/sys/bus/ap/apmask', owner: 65534, group: 65534, uid: 0, gid: 0 },
        { kind: 'sysfs', path: '/sys/bus/ap/apmask', data: '-5\n', uid: 65534, gid: 65534, comm: 'bash' },
        { kind: 'setattr', path: '/sys/bus/ap/apmask', mode: 0o600, uid: 65534, gid: 65534 },
      ],
    );
    const state = (await dd.http('GET', '/state')).text;
    assert.match(state, /\nbus\/ap\/apmask mode=0600 uid=65534 gid=65534\n$/);
    assert.equal(await dd.stop(), 0);
    // A restart replays the journal: owner, mode and the owner's write are back.
    dd = await new Daemon(t.root).ready();
    assert.equal(await st(), '600 65534 65534\n');
    assert.equal((await dd.http('GET', '/state')).text, state);
    assert.equal((await sh('cat $S/bus/ap/apmask', { env })).stdout, `0xfb${'f'.repeat(62)}\n`);
    assert.equal(await dd.stop(), 0);
    dd = null;
  } finally {
    await dd?.kill9();
    await t.cleanup();
  }
});
