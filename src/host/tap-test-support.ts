// For tests that create taps (src/host/tapd.test.ts, test/host-nic.test.ts): when they can run,
// and a private /24 for their addresses.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/** A skip reason, or false: a tap needs root and /dev/net/tun. Never under CI=true: there the test runs and fails without them. */
export const tapSkip: string | false = process.env.CI === 'true' ? false
  : process.getuid?.() !== 0 ? 'needs root (a tap is created)' : !existsSync('/dev/net/tun') ? 'no /dev/net/tun' : false;

/**
 * A /24 `10.77.N` with N in [first, first + count): each test file takes its own slice (tapd.test.ts
 * 100–174, host-nic.test.ts 175–249, pxe-boot.test.ts 50–99, nic-team-lacp.test.ts 20–49), since
 * two files may run at once (--test-concurrency=2) and the same /24 on two taps sends one test's
 * pings out of the other's interface. Subnets already on an interface (a leftover persistent tap
 * of a killed run, another run on this host) are skipped.
 */
export function freeTestNet(first: number, count: number): string {
  const used = spawnSync('ip', ['-4', '-o', 'addr', 'show']).stdout?.toString() ?? '';
  const start = randomBytes(1)[0]! % count;
  for (let i = 0; i < count; i++) {
    const net = `10.77.${first + ((start + i) % count)}`;
    if (!used.includes(` ${net}.`)) return net;
  }
  return `10.77.${first + start}`; // all taken: the test will say so when its pings fail
}
