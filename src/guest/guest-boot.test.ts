// Boots the real test guest under QEMU (TCG) once and drives its agent: readiness and
// boot time, ping, KVP, exec (exit code, stderr, binary output, limits, timeout,
// concurrency), host-side disconnect/reconnect, graceful shutdown.
// Skipped when qemu-system-x86_64 is not installed. Build the image first with
// scripts/build-guest.sh or let ensureGuestImage() do it (~10 s, cached).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { AgentClient, agentChardevArgs, ensureGuestImage } from './index.ts';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;

function firstLine(path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no line from agent')); }, timeoutMs);
    s.on('data', (c) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); s.destroy(); resolve(buf.slice(0, nl)); }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

test('test guest boots and its agent serves the host', { skip: !haveQemu && process.env.CI !== 'true' && 'qemu-system-x86_64 not installed', timeout: 240_000 }, async (t) => {
  const image = await ensureGuestImage();
  const manifest = JSON.parse(readFileSync(image.manifest, 'utf8')) as { kernelVersion: string };
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-guest-'));
  const sock = join(dir, 'agent.sock');
  let serial = '';
  const t0 = Date.now();
  const qemu: ChildProcess = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', '256', '-nographic', '-no-user-config',
    '-kernel', image.kernel, '-initrd', image.initrd,
    '-append', 'console=ttyS0 quiet panic=-1 vmhost.hostname=t1',
    ...agentChardevArgs(sock),
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  qemu.stdout!.on('data', (c: Buffer) => { serial += c.toString('latin1'); });
  qemu.stderr!.on('data', (c: Buffer) => { serial += c.toString('latin1'); });
  const exited = once(qemu, 'exit');
  let client = new AgentClient({ path: sock, reconnectDelayMs: 100, vm: 't1' });
  t.after(async () => {
    await client.close();
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  await client.connect();
  const info = await client.waitReady(90_000);
  const bootMs = Date.now() - t0;
  t.diagnostic(`boot to agent-ready: ${bootMs} ms (guest uptime ${info.uptimeMs} ms, kernel ${info.kernel})`);
  console.log(`guest boot to agent-ready: ${bootMs} ms`);
  assert.equal(info.hostname, 't1');
  assert.match(serial, /vmhost-guest: up hostname=t1/);

  await t.test('ping', async () => {
    const p = await client.ping();
    assert.equal(p.kernel, manifest.kernelVersion);
    assert.ok(Math.abs(p.timeMs - Date.now()) < 60_000, 'guest clock near host clock');
  });

  await t.test('root shells on the serial console and on tty1', async () => {
    // Input sent before the shell opened ttyS0 is lost: repeat until it answers.
    // Bounded by a deadline, not 50 rounds: the shell's start on ttyS0 after agent-ready takes
    // longer under TCG on a loaded host.
    for (let i = 0, end = Date.now() + 30_000; Date.now() < end && !serial.includes('serial-42'); i++) {
      if (i % 20 === 0) qemu.stdin!.write('echo serial-$((6*7))\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(serial, /serial-42/);
    const r = await client.exec('for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sh ] && readlink $p/fd/0; done; true');
    const ttys = r.stdout.toString().split('\n');
    assert.ok(ttys.includes('/dev/ttyS0') && ttys.includes('/dev/tty1'), `shell ttys: ${ttys.join(' ')}`);
  });

  await t.test('kvp', async () => {
    await client.exec('ip addr add 192.0.2.7/32 dev lo');
    const kvp = await client.kvp();
    assert.equal(kvp.FullyQualifiedDomainName, 't1');
    assert.equal(kvp.OSVersion, manifest.kernelVersion);
    assert.match(kvp.OSName, /vmhost test guest/);
    assert.deepEqual(kvp.NetworkAddressIPv4, ['192.0.2.7']);
    assert.ok(Array.isArray(kvp.NetworkAddressIPv6));
    // Per interface with its MAC; loopback (where 192.0.2.7 is) is left out.
    assert.ok(Array.isArray(kvp.NetworkInterfaces), JSON.stringify(kvp));
    for (const n of kvp.NetworkInterfaces) assert.match(n.MacAddress, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, JSON.stringify(n));
    assert.ok(!kvp.NetworkInterfaces.some((n) => n.Name === 'lo' || n.IPv4.includes('192.0.2.7')));
  });

  await t.test('meminfo: the guest\'s own /proc/meminfo and PSI', async () => {
    const m = await client.meminfo();
    const own = (await client.exec('cat /proc/meminfo')).stdout.toString();
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(own)![1]) * 1024;
    assert.equal(m.memTotalBytes, kb('MemTotal'));
    assert.ok(m.memAvailableBytes > 0 && m.memAvailableBytes <= m.memTotalBytes, JSON.stringify(m));
    // Debian's kernel has PSI: the avg10 percentages are there, each 0–100.
    for (const v of [m.psiSomeAvg10, m.psiFullAvg10]) assert.ok(typeof v === 'number' && v >= 0 && v <= 100, JSON.stringify(m));
  });

  await t.test('exec: exit code, stdout, stderr', async () => {
    const r = await client.exec('uname -r; echo err >&2; exit 3');
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout.toString(), manifest.kernelVersion + '\n');
    assert.equal(r.stderr.toString(), 'err\n');
    assert.equal(r.timedOut, false);
  });

  await t.test('exec: binary-safe in both directions, bounded output', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const octal = Array.from({ length: 256 }, (_, i) => '\\' + i.toString(8).padStart(3, '0')).join('');
    const r = await client.exec(`printf '${octal}'`);
    assert.deepEqual(r.stdout, all);
    // The script itself carries arbitrary bytes (quotes, backslashes, newlines, 0xff).
    const odd = 'a"b\\c\'d\n\xff';
    const echo = await client.exec(Buffer.concat([Buffer.from("cat <<'EOF'\n"), Buffer.from(odd, 'latin1'), Buffer.from('\nEOF\n')]));
    assert.deepEqual(echo.stdout, Buffer.concat([Buffer.from(odd, 'latin1'), Buffer.from('\n')]));
    const big = await client.exec('head -c 1200000 /dev/zero');
    assert.equal(big.truncated, true);
    assert.equal(big.stdout.length, 1024 * 1024);
  });

  await t.test('exec: timeout kills the script; ping answers while exec runs', async () => {
    // The ping must come back while the exec still runs: an agent that handles one request
    // at a time answers it only after the exec's timeout. Checked by order, not by a 1.5 s
    // clock (a ping to a TCG guest on a loaded host can take over a second on its own);
    // the 4 s timeout leaves a ping that slow room to arrive first.
    let execSettled = false;
    const slow = client.exec('sleep 30; echo never', { timeoutMs: 4000 });
    slow.then(() => { execSettled = true; }, () => { execSettled = true; });
    await client.ping();
    assert.equal(execSettled, false, 'ping not blocked by exec');
    const r = await slow;
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    assert.equal(r.stdout.length, 0);
  });

  await t.test('host side disconnects and reconnects', async () => {
    // Daemon restart: the old client goes away, a new one connects to the same socket.
    await client.close();
    client = new AgentClient({ path: sock, reconnectDelayMs: 100, vm: 't1' });
    await client.connect();
    await client.waitReady(10_000);
    assert.equal((await client.ping()).hostname, 't1');
    // After a pause the guest has seen the hang-up, and greets the next host first.
    await client.close();
    await new Promise((r) => setTimeout(r, 1500));
    const line = JSON.parse(await firstLine(sock, 10_000)) as { event?: string; hostname?: string };
    assert.equal(line.event, 'ready');
    assert.equal(line.hostname, 't1');
    client = new AgentClient({ path: sock, reconnectDelayMs: 100, vm: 't1' });
    await client.connect();
    await client.waitReady(10_000);
    assert.equal((await client.ping()).hostname, 't1');
  });

  await t.test('settime steps the guest clock and reports the previous time', async () => {
    const r = await client.setTime(Date.now() - 3_600_000);
    assert.ok(Math.abs(r.previousTimeMs - Date.now()) < 60_000, 'previous time was the guest clock');
    assert.ok(Math.abs((await client.ping()).timeMs - (Date.now() - 3_600_000)) < 10_000, 'clock now an hour behind');
    await client.setTime(Date.now());
    assert.ok(Math.abs((await client.ping()).timeMs - Date.now()) < 10_000);
  });

  await t.test('writefile: chunked copy lands whole under its name; FILE_EXISTS, NO_DIRECTORY', async () => {
    const data = randomBytes(2.5 * 1024 * 1024);
    const src = join(dir, 'src.bin');
    writeFileSync(src, data);
    assert.equal((await client.writeFile(src, '/tmp/a/b/copy.bin', { createFullPath: true })).bytes, data.length);
    const sum = await client.exec('sha256sum /tmp/a/b/copy.bin; ls -a /tmp/a/b');
    assert.equal(sum.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
    assert.doesNotMatch(sum.stdout.toString(), /vmhost-/, 'no temp file left');
    const agentCode = (e: unknown) => (e as { context?: { agentCode?: string } }).context?.agentCode;
    await assert.rejects(client.writeFile(src, '/tmp/a/b/copy.bin'), (e) => agentCode(e) === 'FILE_EXISTS');
    await assert.rejects(client.writeFile(src, '/tmp/missing/x.bin'), (e) => agentCode(e) === 'NO_DIRECTORY');
    writeFileSync(src, 'short\n');
    await client.writeFile(src, '/tmp/a/b/copy.bin', { overwrite: true });
    assert.equal((await client.exec('cat /tmp/a/b/copy.bin; ls -a /tmp/a/b /tmp/missing 2>&1 | grep -c vmhost-')).stdout.toString(), 'short\n0\n');
  });

  await t.test('shutdown powers the guest off', async () => {
    await client.shutdown();
    let timer: NodeJS.Timeout | undefined;
    const [code] = await Promise.race([exited, new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('QEMU did not exit')), 30_000); })]);
    clearTimeout(timer);
    assert.equal(code, 0);
    assert.match(serial, /vmhost-guest: shutting down/);
  });
});
