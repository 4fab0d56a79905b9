// Debian's mdevctl, unchanged, against the live host: every command runs in a private
// mount namespace (unshare -m) where a tmpfs replaces /sys and the simulated
// /sys/class/mdev_bus, /sys/bus/mdev, /sys/bus/matrix and /sys/devices/vfio_ap are
// bind-mounted from the FUSE mount at their real paths, and a temp dir is bind-mounted
// at /etc/mdevctl.d. The namespace dies with the command, so no mount outlives a
// failure. types, define, modify, list (--defined, --dumpjson), start (defined and
// transient), stop with a guest holding the mdev (REQ: QEMU lets go), undefine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, cli, sh, skipReason, tempRoot } from './helpers.js';

const MDEVCTL = '/usr/bin/mdevctl';
const skip = skipReason() ?? (existsSync(MDEVCTL) ? null : 'mdevctl is not installed (scripts/setup.sh installs it)');
const opt = { skip: skip ?? false, timeout: 60_000 };
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;
let etc: string;
let ns: string;
const U1 = 'aaaaaaaa-1111-2222-3333-444444444444';
const U2 = 'bbbbbbbb-1111-2222-3333-444444444444';

const NS = `#!/bin/bash
# "$@" with the simulated sysfs ($SIM) and $ETC at their real paths, in this mount namespace.
set -e
mount --make-rprivate /
mount -t tmpfs apsim-sys /sys
for d in class/mdev_bus bus/mdev bus/matrix devices/vfio_ap; do mkdir -p "/sys/$d"; mount --bind "$SIM/$d" "/sys/$d"; done
mkdir -p /etc/mdevctl.d
mount --bind "$ETC" /etc/mdevctl.d
exec "$@"
`;

/** mdevctl ARGS in the namespace. */
const mdevctl = (args: string) => sh(`unshare -m bash ${ns} ${MDEVCTL} ${args}`, { env: { SIM: d.mnt, ETC: etc }, timeoutMs: 30_000 });
const run = (script: string) => sh(script, { shell: 'bash', env: { S: d.mnt } });

before(async () => {
  if (skip) return;
  tmp = tempRoot('mdevctl');
  etc = join(tmp.root, 'etc-mdevctl.d');
  mkdirSync(join(etc, 'scripts.d/callouts'), { recursive: true });
  mkdirSync(join(etc, 'scripts.d/notifiers'), { recursive: true });
  ns = join(tmp.root, 'ns.sh');
  writeFileSync(ns, NS);
  d = await new Daemon(tmp.root).ready();
  const r = await run('echo -5,-6 > $S/bus/ap/apmask && echo -4,-0xab > $S/bus/ap/aqmask');
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

const ok = async (args: string, stdout: string) => {
  const r = await mdevctl(args);
  assert.deepEqual([r.code, r.stderr, r.stdout], [0, '', stdout], `mdevctl ${args}`);
};

test('mdevctl types, define, modify, list --defined/--dumpjson against the live host', opt, async () => {
  await ok('--version', 'mdevctl 1.2.0\n');
  await ok('types', 'matrix\n  vfio_ap-passthrough\n    Available instances: 65536\n    Device API: vfio-ap\n    Name: VFIO AP Passthrough Device\n\n');
  await ok(`define -u ${U1} -p matrix -t vfio_ap-passthrough`, '');
  await ok(`modify -u ${U1} --addattr=assign_adapter --value=5`, '');
  await ok(`modify -u ${U1} --addattr=assign_domain --value=4`, '');
  await ok(`modify -u ${U1} --addattr=assign_control_domain --value=4`, '');
  await ok('list --defined', `${U1} matrix vfio_ap-passthrough manual\n\n`);
  const conf = JSON.parse(readFileSync(join(etc, 'matrix', U1), 'utf8'));
  assert.deepEqual(conf, { mdev_type: 'vfio_ap-passthrough', start: 'manual', attrs: [{ assign_adapter: '5' }, { assign_domain: '4' }, { assign_control_domain: '4' }] });
  const j = await mdevctl('list --dumpjson --defined');
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), [{ matrix: [{ [U1]: conf }] }]);
  await ok('list', '\n');
  assert.equal((await run(`ls $S/bus/mdev/devices`)).stdout, '', 'defining creates nothing');
});

test('mdevctl start (defined and transient), list, a guest on it, stop with the guest running (REQ), modify --auto, undefine', opt, async () => {
  await ok(`start -u ${U1}`, '');
  assert.equal((await run(`cat $S/bus/mdev/devices/${U1}/matrix $S/bus/mdev/devices/${U1}/control_domains`)).stdout, '05.0004\n0004\n');
  await ok(`start -u ${U2} -p matrix -t vfio_ap-passthrough`, '');
  await ok('list', `${U1} matrix vfio_ap-passthrough manual (defined)\n${U2} matrix vfio_ap-passthrough manual\n\n`);
  const j = await mdevctl('list --dumpjson');
  assert.deepEqual(JSON.parse(j.stdout), [
    {
      matrix: [
        { [U1]: { mdev_type: 'vfio_ap-passthrough', start: 'manual', attrs: [{ assign_adapter: '5' }, { assign_domain: '4' }, { assign_control_domain: '4' }] } },
        { [U2]: { mdev_type: 'vfio_ap-passthrough', start: 'manual', attrs: [] } },
      ],
    },
  ]);
  // A guest uses U1; mdevctl stop removes it: vfio_ap asks QEMU (REQ), QEMU unplugs.
  const g = await cli(['guest', 'start', 'vm1', '--mdev', U1, '--root', tmp.root]);
  assert.equal(g.code, 0, g.stderr);
  assert.match((await cli(['guest', 'view', 'vm1', '--root', tmp.root])).stdout, /^05\.0004  cc 0 rc 00 E$/m);
  await ok(`stop -u ${U1}`, '');
  await ok(`stop -u ${U2}`, '');
  assert.equal((await run(`ls $S/bus/mdev/devices`)).stdout, '');
  const ls = JSON.parse((await cli(['guest', 'ls', '--json', '--root', tmp.root])).stdout);
  assert.deepEqual(
    ls.guests.map((x: { name: string; mdev: string | null; req_handled: number }) => [x.name, x.mdev]),
    [['vm1', null]],
  );
  await ok('list', '\n');
  await ok(`modify -u ${U1} --auto`, '');
  await ok('list --defined', `${U1} matrix vfio_ap-passthrough auto\n\n`);
  await ok(`undefine -u ${U1}`, '');
  await ok('list --defined', '\n');
  assert.equal(existsSync(join(etc, 'matrix', U1)), false);
  // The mdevctl writes were sysfs stores through FUSE: journaled like any other.
  const jr = await d.http('GET', '/journal');
  const paths = jr.json.entries.filter((e: { op: { kind: string } }) => e.op.kind === 'sysfs').map((e: { op: { path: string; data: string } }) => `${e.op.path} ${e.op.data.trim()}`);
  assert.ok(paths.includes(`/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create ${U1}`), paths.join('\n'));
  assert.ok(paths.includes(`/sys/devices/vfio_ap/matrix/${U1}/assign_adapter 5`), paths.join('\n'));
  assert.ok(paths.includes(`/sys/devices/vfio_ap/matrix/${U1}/remove 1`), paths.join('\n'));
});
