// Micro-benchmark: parseFrame / parseFrameInto rate over a mix of frames (ARP with and
// without VLAN, DHCP, TCP, ICMP, ND, IPv6 with extension headers, fragments, NVGRE,
// GRE-in-UDP), the sample set of the packet tests. Prints frames/s and ns/frame.
// Run: node --import tsx bench/packet-parse.ts [seconds per variant, default 2]
import { parseFrame, parseFrameInto, FrameInfo } from '../src/packet/index.ts';
// The fixtures are test material, deliberately kept out of the public index.
import { samples } from '../src/packet/samples.ts';

const seconds = Number(process.argv[2] ?? 2);
const frames = samples().map((s) => Buffer.from(s.frame)); // Buffers, as the switch reads them off sockets
const n = frames.length;

function run(name: string, parse: (b: Uint8Array) => FrameInfo): void {
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += parse(frames[i % n]!).l4Offset; // warm-up
  let count = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < deadline) {
    for (let i = 0; i < 100_000; i++) sink += parse(frames[i % n]!).l4Offset;
    count += 100_000;
    now = process.hrtime.bigint();
  }
  const ns = Number(now - t0);
  const rate = count / (ns / 1e9);
  console.log(`${name.padEnd(34)} ${(rate / 1e6).toFixed(2).padStart(7)} M frames/s  ${(ns / count).toFixed(1).padStart(6)} ns/frame  (${n}-frame mix, sink ${sink % 7})`);
}

const reused = new FrameInfo();
run('parseFrame (new FrameInfo each)', parseFrame);
run('parseFrameInto (one reused object)', (b) => parseFrameInto(b, reused));
