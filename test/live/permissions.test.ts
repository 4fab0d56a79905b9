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
