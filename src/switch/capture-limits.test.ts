// A capture never takes the host down (issue 16 item 7): it stops at its byte cap with an
// event (50 MB flooded through the switch's own frame path, the file read by tshark), a write
// error (a full tmpfs: ENOSPC) stops it with an event instead of throwing into the frame path,
// and the file is opened O_NOFOLLOW, O_EXCL unless overwriting, mode 0600.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BCAST, Bench, ip, mac, udp, until } from './test-support.ts';
import type { CaptureStop } from './capture.ts';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;

function stops(b: Bench): CaptureStop[] {
  return (b.events as { type: string; stop?: CaptureStop }[]).filter((e) => e.type === 'capture-stopped').map((e) => e.stop!);
}

/** Flood: 1400-byte UDP broadcasts from port a, in batches so setImmediate flushes run in between. */
async function flood(b: Bench, bytes: number): Promise<void> {
  const frame = udp(mac(1), BCAST, ip(1), ip(255), 9, 9, new Uint8Array(1358));
  const n = Math.ceil(bytes / frame.length);
  for (let i = 0; i < n; i++) {
    b.send('a', frame);
    if (i % 2000 === 0) await new Promise((r) => setImmediate(r));
  }
}

test('a 50 MB capture cap: the flood goes on, the capture stops at the cap with an event, tshark reads the file', { skip: !haveTshark && 'tshark not installed', timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-caplim-'));
  try {
    const b = await Bench.create({}, true);
    await b.port('a', { mac: mac(1) });
    await b.port('b', { mac: mac(2) });
    const cap = 50_000_000;
    const file = join(dir, 'all.pcap');
    b.sw.startCapture(null, file, { maxBytes: cap });
    await flood(b, 60_000_000);
    await until(() => stops(b).length > 0, 5000);
    const [stop] = stops(b);
    assert.equal(stop!.reason, 'max-bytes');
    const size = statSync(file).size;
    assert.equal(size, stop!.bytes, 'the event names the file size');
    assert.ok(size <= cap && size > cap - 1500, `file stops within one record of the cap (${size})`);
    assert.equal(b.sw.stopCapture(null), null, 'the capture is gone; a new one may start');
    b.send('a', udp(mac(1), BCAST, ip(1), ip(255), 9, 9));
    assert.equal(statSync(file).size, size, 'nothing written after the stop');
    b.take('b');
    b.send('a', udp(mac(1), mac(2), ip(1), ip(2), 9, 9));
    assert.equal(b.take('b').length, 1, 'the switch forwards as before');
    const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, stop!.frames, 'tshark reads every frame the event counts');
    console.log(`50 MB cap: ${stop!.frames} frames, ${size} bytes`);
    await b.sw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a full disk (tmpfs) stops the capture with a write-error event, nothing thrown into the frame path', { skip: !isRoot && 'needs root to mount a tmpfs', timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-capfull-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  try {
    const b = await Bench.create({}, true);
    await b.port('a', { mac: mac(1) });
    await b.port('b', { mac: mac(2) });
    b.sw.startCapture('a', join(dir, 'a.pcap'));
    await flood(b, 2_000_000);
    await until(() => stops(b).length > 0, 5000);
    const [stop] = stops(b);
    assert.equal(stop!.reason, 'write-error');
    assert.match(stop!.error ?? '', /ENOSPC/);
    assert.equal(statSync(join(dir, 'a.pcap')).size, stop!.bytes, 'the event counts what reached the file');
    assert.equal(b.sw.stopCapture('a'), null);
    b.take('b');
    b.send('a', udp(mac(1), mac(2), ip(1), ip(2), 9, 9));
    assert.equal(b.take('b').length, 1, 'the switch forwards as before');
    await b.sw.close();
  } finally {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('capture file: a symlink is never followed, an existing file only replaced when overwriting, mode 0600', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-capopen-'));
  const old = process.umask(0);
  try {
    const b = await Bench.create({}, true);
    await b.port('a', { mac: mac(1) });
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(dir, 'link.pcap'));
    assert.throws(() => b.sw.startCapture(null, join(dir, 'link.pcap'), { overwrite: true }), { code: 'ELOOP' });
    assert.throws(() => b.sw.startCapture(null, join(dir, 'link.pcap')), { code: 'EEXIST' });
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    writeFileSync(join(dir, 'old.pcap'), 'old');
    assert.throws(() => b.sw.startCapture(null, join(dir, 'old.pcap')), { code: 'EEXIST' });
    b.sw.startCapture(null, join(dir, 'old.pcap'), { overwrite: true });
    assert.equal(b.sw.stopCapture(null)!.bytes, 24, 'replaced: just the pcap header');
    assert.equal(statSync(join(dir, 'old.pcap')).mode & 0o777, 0o600);
    await b.sw.close();
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});
