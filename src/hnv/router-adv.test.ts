// Unsolicited Router Advertisements on the switch's timer (ExtensionTimer): with a short
// MinRtrAdvInterval/MaxRtrAdvInterval, every port of a subnet with an on-link IPv6 prefix gets an
// RA to all-nodes from the router's link-local address within the interval (its prefix, MTU and
// checksum read back by the packet parser); a subnet with no IPv6 prefix gets none; the timer is
// pending while the extension is on the switch, and none is left once it is removed (nothing
// more arrives) or the switch is closed. The delay is uniform in [min, max] (RFC 4861 §6.2.4).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ND_ROUTER_ADVERT, formatIpv6, icmpv6ChecksumOk, macToNumber, parseFrame } from '../packet/index.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { HNV_EXTENSION, type HnvExtensionConfig } from './index.ts';
import { addCustomerRoute, addProviderAddress, customerRoute, emptyPolicy, providerAddress } from './policy.ts';
import { advertisementDelay } from './router-adv.ts';

const BLUE = '{11111111-0000-0000-0000-000000000001}';
const PORTS = [{ id: 'v6a', vsid: 5001 }, { id: 'v6b', vsid: 5001 }, { id: 'v4only', vsid: 6001 }] as const;

function config(): Record<string, unknown> {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: '192.168.100.1', InterfaceIndex: 1, PrefixLength: 24 }));
  p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, DestinationPrefix: 'fd00:b::/64', NextHop: '::' }));
  p = addCustomerRoute(p, customerRoute({ RoutingDomainID: BLUE, VirtualSubnetID: 6001, DestinationPrefix: '10.0.0.0/24', NextHop: '0.0.0.0' }));
  const c: HnvExtensionConfig = { policy: p, minRtrAdvIntervalMs: 30, maxRtrAdvIntervalMs: 90 };
  return c as unknown as Record<string, unknown>;
}

describe('unsolicited Router Advertisements on the switch timer', () => {
  const got = new Map<string, Uint8Array[]>(PORTS.map((p) => [p.id, []]));
  let sw: VirtualSwitch;
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmhost-ra-'));
    sw = await VirtualSwitch.create({ name: 'ra', type: 'Private', socketDir: dir });
    for (const p of PORTS) {
      await sw.addPort({ id: p.id, policy: { mac: `52:54:00:00:00:0${PORTS.indexOf(p) + 1}`, virtualSubnetId: p.vsid }, sink: (f) => got.get(p.id)!.push(Uint8Array.prototype.slice.call(f)) });
    }
  });
  after(async () => { await sw?.close(); if (dir) await rm(dir, { recursive: true, force: true }); });

  test('every port of an IPv6 subnet hears the RA within the interval; none after the extension is removed', async () => {
    const t0 = Date.now();
    sw.addExtension(HNV_EXTENSION, { config: config() });
    assert.equal(sw.extensionTimers, 1, 'the data path\'s timer is armed with it');
    // Each port's first RA, awaited by the frames arriving (no sleep).
    const ras = await new Promise<Uint8Array[]>((resolve, reject) => {
      const give = setTimeout(() => reject(new Error('no RA within 5 s')), 5_000);
      const poll = setInterval(() => {
        if (got.get('v6a')!.length === 0 || got.get('v6b')!.length === 0) return;
        clearInterval(poll); clearTimeout(give);
        resolve([got.get('v6a')![0]!, got.get('v6b')![0]!]);
      }, 5);
    });
    const first = Date.now() - t0;
    for (const f of ras) {
      const info = parseFrame(f);
      assert.equal(info.icmpType, ND_ROUTER_ADVERT);
      assert.equal(info.dst, macToNumber(new Uint8Array([0x33, 0x33, 0, 0, 0, 1])), 'to all-nodes');
      assert.deepEqual([formatIpv6(f, info.ipSrcOffset), formatIpv6(f, info.ipSrcOffset + 16), f[14 + 7]], ['fe80::15:5dff:feff:ff01', 'ff02::1', 255]);
      assert.ok(icmpv6ChecksumOk(f, 54, f.length - 54, f.subarray(22, 38), f.subarray(38, 54)), 'good ICMPv6 checksum');
      // The Prefix Information option carries fd00:b::/64 (its prefix at option offset 16).
      const opts = f.subarray(info.l4Offset + 16);
      let prefix = '';
      for (let o = 0; o + 8 <= opts.length && opts[o + 1]! > 0; o += opts[o + 1]! * 8) if (opts[o] === 3) prefix = `${formatIpv6(opts, o + 16)}/${opts[o + 2]}`;
      assert.equal(prefix, 'fd00:b::/64');
    }
    assert.deepEqual(got.get('v4only'), [], 'a subnet without an IPv6 prefix has no IPv6 router');
    const status = sw.extensions().find((x) => x.name === HNV_EXTENSION)!.status as { raSent: number };
    assert.ok(status.raSent >= 2, JSON.stringify(status));
    console.log(`# first unsolicited RA on both ports ${first} ms after the extension was added (interval 30–90 ms)`);

    sw.removeExtension(HNV_EXTENSION);
    assert.equal(sw.extensionTimers, 0, 'no timer left after the removal');
    // Nothing more: the next fire would have come within 90 ms; a port's queue stays as it was across three intervals' worth of other work.
    const before = got.get('v6a')!.length;
    await new Promise<void>((resolve) => setTimeout(resolve, 300));
    assert.equal(got.get('v6a')!.length, before, 'no RA after the extension was removed');
  });

  test('closing the switch stops the timer', async () => {
    const d2 = await mkdtemp(join(tmpdir(), 'vmhost-ra2-'));
    const s2 = await VirtualSwitch.create({ name: 'ra2', type: 'Private', socketDir: d2 });
    s2.addExtension(HNV_EXTENSION, { config: config() });
    assert.equal(s2.extensionTimers, 1);
    await s2.close();
    assert.equal(s2.extensionTimers, 0);
    await rm(d2, { recursive: true, force: true });
  });

  test('the delay is uniform between MinRtrAdvInterval and MaxRtrAdvInterval', () => {
    assert.equal(advertisementDelay(200_000, 600_000, () => 0), 200_000);
    assert.equal(advertisementDelay(200_000, 600_000, () => 0.5), 400_000);
    assert.ok(advertisementDelay(200_000, 600_000, () => 0.999999) <= 600_000);
  });
});
