// ReplyWriter: replies made in its slabs leave in the order they were sent, byte for byte, also
// when the peer does not read for a while (the socket's buffer fills, writes return EAGAIN and
// Node keeps the rest): a slab region is never handed out again while the socket holds it. A
// tick's replies that lie next to each other leave in one socket write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { ReplyWriter } from './reply-writer.ts';
import { tempDir } from '../test-support.ts';

/** A connected pair of unix stream sockets: `a` writes, `b` (paused: nothing read until resumed) receives. */
async function socketPair(dir: string): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const path = join(dir, 'pair.sock');
  let accepted!: (s: Socket) => void;
  const got = new Promise<Socket>((r) => { accepted = r; });
  const srv = createServer({ pauseOnConnect: true }, (s) => accepted(s));
  await new Promise<void>((r) => srv.listen(path, r));
  const a = createConnection(path);
  await new Promise<void>((r) => a.once('connect', r));
  const b = await got;
  return { a, b, close: () => { a.destroy(); b.destroy(); srv.close(); } };
}

/** Fills `b` with bytes that name reply `i` and the position in it. */
function fill(b: Buffer, i: number): void {
  for (let k = 0; k < b.length; k++) b[k] = (i * 7 + k * 13 + 1) & 0xff;
}

test('replies leave in order and intact while the peer reads nothing (EAGAIN), across many slabs', async () => {
  const { dir, cleanup } = tempDir('reply-writer-');
  const { a, b, close } = await socketPair(dir);
  try {
    const w = new ReplyWriter(a);
    const expect: Buffer[] = [];
    let writes = 0;
    const write = a.write.bind(a) as (chunk: Buffer) => boolean;
    a.write = ((chunk: Buffer) => { writes++; return write(chunk); }) as typeof a.write;
    // 2,000 replies of 32 B – 64 KiB (and a few over the slab's limit), 40 per tick: ~40 MiB,
    // far more than the socket buffers hold while `b` is paused.
    const sizes = [32, 4128, 20, 65_536, 512, 4096 + 32, 100_000];
    let total = 0;
    for (let tick = 0; tick < 50; tick++) {
      for (let j = 0; j < 40; j++) {
        const i = tick * 40 + j;
        const r = w.alloc(sizes[i % sizes.length]!);
        fill(r, i);
        expect.push(Buffer.from(r));
        total += r.length;
        w.send(r);
      }
      await new Promise<void>((r) => process.nextTick(r));
    }
    assert.equal(w.pending, 0, 'every tick handed its replies to the socket');
    assert.ok(a.writableLength > 0, 'the socket holds unsent replies (the peer has not read)');
    // Now the peer reads everything.
    const chunks: Buffer[] = [];
    let received = 0;
    const done = new Promise<void>((r) => b.on('data', (c: Buffer) => { chunks.push(c); received += c.length; if (received >= total) r(); }));
    b.resume();
    await done;
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat(expect)), 'the bytes received are the replies, in order');
    assert.ok(writes < 2000, `contiguous replies were merged (${writes} socket writes for 2,000 replies)`);
  } finally {
    close();
    cleanup();
  }
});

test('a tick of small replies is one socket write; a shared buffer between them splits it in order', async () => {
  const { dir, cleanup } = tempDir('reply-writer-');
  const { a, b, close } = await socketPair(dir);
  try {
    const w = new ReplyWriter(a);
    const seen: Buffer[] = [];
    const write = a.write.bind(a) as (chunk: Buffer) => boolean;
    a.write = ((chunk: Buffer) => { seen.push(Buffer.from(chunk)); return write(chunk); }) as typeof a.write;
    for (let i = 0; i < 32; i++) {
      const r = w.alloc(32);
      fill(r, i);
      w.send(r);
    }
    w.flush();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.length, 32 * 32);
    const shared = Buffer.alloc(4096, 0xab);
    const h1 = w.alloc(16); fill(h1, 1); w.send(h1);
    w.send(shared);
    const h2 = w.alloc(16); fill(h2, 2); w.send(h2);
    w.flush();
    assert.deepEqual(seen.slice(1).map((s) => s.length), [16, 4096, 16]);
    const all = Buffer.concat(seen);
    let got = 0;
    const rx: Buffer[] = [];
    const done = new Promise<void>((r) => b.on('data', (c: Buffer) => { rx.push(c); got += c.length; if (got >= all.length) r(); }));
    b.resume();
    await done;
    assert.ok(Buffer.concat(rx).equals(all));
  } finally {
    close();
    cleanup();
  }
});
