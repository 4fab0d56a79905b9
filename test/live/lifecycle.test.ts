// Daemon lifecycle: SIGTERM unmounts cleanly and removes run.json; a busy, non-empty
// or already served mount point is refused with a clear message; the CLI says so
// when no daemon runs; `apsim down` stops a daemon and cleans up after a dead one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, cli, isMounted, sh, skipReason, tempRoot, waitFor } from './helpers.js';

const skip = skipReason();
const opt = { skip: skip ?? false };

test('SIGTERM unmounts, removes run.json and exits 0', opt, async () => {
  const t = tempRoot('term');
  try {
    const d = await new Daemon(t.root).ready();
    assert.ok(isMounted(d.mnt));
    assert.ok(existsSync(join(t.root, 'run.json')));
    // A process sitting in the mount does not block the shutdown (lazy unmount).
    const holder = spawn('sleep', ['30'], { cwd: d.mnt, stdio: 'ignore' });
    await waitFor('the holder to start', () => holder.pid !== undefined);
    assert.equal(await d.stop(), 0);
    holder.kill('SIGKILL');
    assert.ok(!isMounted(d.mnt), 'unmounted');
    assert.ok(!existsSync(join(t.root, 'run.json')));
    assert.match(d.stderr, /SIGTERM: unmounting/);
  } finally {
    await t.cleanup();
  }
});

test('a non-empty mount point is refused', opt, async () => {
  const t = tempRoot('nonempty');
  try {
    mkdirSync(join(t.root, 'sys'));
    writeFileSync(join(t.root, 'sys', 'precious'), 'x');
    const d = new Daemon(t.root);
    assert.equal(await d.exited, 1);
    assert.match(d.stderr, /mount point .*\/sys is not empty .*precious.*refusing to mount over it/);
    assert.ok(!isMounted(d.mnt));
  } finally {
    await t.cleanup();
  }
});

test('a busy mount point (something mounted there) is refused', opt, async () => {
  const t = tempRoot('busy');
  try {
    mkdirSync(join(t.root, 'sys'));
    const m = await sh(`mount -t tmpfs apsim-test-tmpfs ${JSON.stringify(join(t.root, 'sys'))}`);
    assert.equal(m.code, 0, m.stderr);
    const d = new Daemon(t.root);
    assert.equal(await d.exited, 1);
    assert.match(d.stderr, /mount point .*\/sys is busy: apsim-test-tmpfs \(tmpfs\) is mounted there/);
  } finally {
    await t.cleanup();
  }
});

test('a second daemon on the same root is refused; down stops the first; CLI errors without a daemon', opt, async () => {
  const t = tempRoot('second');
  try {
    const none = await cli(['status', '--root', t.root]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no apsim daemon is running on .*start one with 'apsim up --root/);
    const d = await new Daemon(t.root).ready();
    const d2 = new Daemon(t.root);
    assert.equal(await d2.exited, 1);
    assert.match(d2.stderr, /apsim is already running on .* \(pid \d+, http:\/\/127\.0\.0\.1:\d+\)/);
    const st = await cli(['status', '--root', t.root, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(JSON.parse(st.stdout).pid, d.pid);
    const dn = await cli(['down', '--root', t.root]);
    assert.equal(dn.code, 0, dn.stderr);
    assert.match(dn.stdout, /apsim: stopped \(pid \d+\); .* unmounted/);
    assert.equal(await d.exited, 0);
    assert.ok(!isMounted(d.mnt));
    const after = await cli(['hmc', 'remove-adapter', '5', '--root', t.root]);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /no apsim daemon is running/);
    const usage = await cli(['hmc', 'explode', '5', '--root', t.root]);
    assert.equal(usage.code, 2);
  } finally {
    await t.cleanup();
  }
});

test('after kill -9 the mount is cleaned up (watchdog) and down/up recover', opt, async () => {
  const t = tempRoot('kill');
  try {
    const d = await new Daemon(t.root).ready();
    await d.kill9();
    // Either the watchdog already unmounted it, or `down` cleans the stale mount.
    const st = await cli(['status', '--root', t.root]);
    assert.equal(st.code, 1);
    assert.match(st.stderr, /is not running any more/);
    await waitFor('the watchdog to unmount', () => !isMounted(d.mnt));
    const dn = await cli(['down', '--root', t.root]);
    assert.equal(dn.code, 0, dn.stderr);
    assert.match(dn.stdout, /no daemon was running .*had died.*cleaned up/);
    const d2 = await new Daemon(t.root).ready();
    assert.equal(await d2.stop(), 0);
  } finally {
    await t.cleanup();
  }
});

test('up --detach (the README quick start): ready when it returns, log in ROOT/apsim.log; down stops it; a failed start shows this run\'s log lines', opt, async () => {
  const t = tempRoot('detach');
  try {
    const up = await cli(['up', '--root', t.root, '--detach']);
    assert.equal(up.code, 0, up.stderr);
    const m = new RegExp(`^apsim: up \\(detached\\): sysfs at ${t.root}/sys, API http://127\\.0\\.0\\.1:(\\d+), pid (\\d+), log ${t.root}/apsim\\.log\\n$`).exec(up.stdout);
    assert.ok(m, up.stdout);
    assert.equal(up.stderr, '');
    // Returned only once serving: the mount answers at once.
    const r = await sh(`cat ${t.root}/sys/bus/ap/apmask`);
    assert.deepEqual([r.code, r.stdout], [0, '0x' + 'f'.repeat(64) + '\n']);
    const dn = await cli(['down', '--root', t.root]);
    assert.equal(dn.code, 0, dn.stderr);
    assert.equal(dn.stdout, `apsim: stopped (pid ${m[2]}); ${t.root}/sys unmounted\n`);
    assert.ok(!isMounted(join(t.root, 'sys')));
    // Two failed starts on the same root: each reports its own error, not the log's history.
    for (const name of ['/nonexistent-1', '/nonexistent-2']) {
      const bad = await cli(['up', '--root', t.root, '--detach', '--profile', name]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stdout, '');
      assert.equal(
        bad.stderr,
        `apsim up: the daemon exited with status 1:\napsim: profile '${name}' is neither a builtin (default, maximal, minimal) nor a readable file: ENOENT: no such file or directory, open '${name}'\n`,
      );
    }
  } finally {
    await t.cleanup();
  }
});

test('up: bad options are usage errors before anything starts', opt, async () => {
  const t = tempRoot('upargs');
  try {
    for (const [args, msg] of [
      [['--listen', '0.0.0.0:80'], "apsim up: invalid --listen '0.0.0.0:80' (an IP address or a host name; the port is --port)"],
      [['--listen', 'bad host'], "apsim up: invalid --listen 'bad host' (an IP address or a host name; the port is --port)"],
      [['--port', '70000'], "apsim up: invalid --port '70000'"],
      [['--sync', 'sometimes'], 'apsim up: --sync must be off, normal or full'],
      [['--snapshot-every', '0'], 'apsim up: --snapshot-every must be a positive integer'],
    ] as const) {
      for (const detach of [[], ['--detach']]) {
        const r = await cli(['up', '--root', t.root, ...args, ...detach]);
        assert.equal(r.code, 2, args.join(' '));
        assert.equal(r.stderr, `${msg}\nRun 'apsim --help' for usage.\n`);
        assert.ok(!isMounted(join(t.root, 'sys')));
        assert.ok(!existsSync(join(t.root, 'run.json')));
      }
    }
  } finally {
    await t.cleanup();
  }
});

test('up --profile FILE: a custom machine from a JSON file; unreadable, invalid JSON and an invalid profile are refused with the reason', opt, async () => {
  const t = tempRoot('profile');
  try {
    const { builtinProfileJson } = await import('../../src/hw/profiles.js');
    const mine = JSON.parse(JSON.stringify(builtinProfileJson('minimal'))) as { name: string; config: { adapters: number[] }; adapters: Array<{ id: number }> };
    mine.name = 'mine';
    mine.config.adapters = [1];
    const good = join(t.root, 'mine.json');
    writeFileSync(good, JSON.stringify(mine));
    const d = await new Daemon(join(t.root, 'host'), ['--profile', good]).ready();
    try {
      const st = (await d.http('GET', '/status')).json;
      assert.deepEqual([st.profile, st.machine], [good, { name: 'mine', cards: 1, queues: 4 }]);
      const r = await sh(`ls ${d.mnt}/bus/ap/devices`);
      assert.equal(r.stdout, '01.0000\n01.0001\n01.0002\n01.0003\ncard01\n');
    } finally {
      await d.stop();
    }
    const badJson = join(t.root, 'bad.json');
    writeFileSync(badJson, '{"name": "x",');
    mine.adapters[0]!.id = 300;
    const badProfile = join(t.root, 'bad-profile.json');
    writeFileSync(badProfile, JSON.stringify(mine));
    for (const [file, msg] of [
      [badJson, new RegExp(`^apsim: profile file ${badJson}: invalid JSON: .+\\n$`)],
      [badProfile, /^apsim: profile\.adapters\[0\]\.id: 300 out of range 0\.\.255\n$/],
      [join(t.root, 'missing.json'), /^apsim: profile '.*missing\.json' is neither a builtin \(default, maximal, minimal\) nor a readable file: ENOENT: no such file or directory/],
    ] as const) {
      const x = new Daemon(join(t.root, 'host'), ['--profile', file]);
      assert.equal(await x.exited, 1, file);
      assert.match(x.stderr, msg);
      assert.ok(!isMounted(join(t.root, 'host', 'sys')));
    }
  } finally {
    await t.cleanup();
  }
});
