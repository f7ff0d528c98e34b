// The host's gateway store on real switches: every input refused with a one-line error naming
// the parameter (unknown or wrong-type switch, routing domain without a route in the subnet, CA
// without a lookup record on this host, a second pair of switches, a domain served twice,
// overlapping forwarding-mode prefixes); a served domain puts the ports on both switches, is
// kept in hnv-gateways.json across a new store on the same data dir, and Remove- takes the
// ports off (NOT_FOUND when nothing matches). The gateway follows, at once, the lookup record
// of its CA (a new MAC, the record gone and back) and its switches (removed, made again). The
// IPv6 inputs (gateway CA and external address, NPTv6 prefixes in Nat mode only, of one length
// up to /64 and holding the domain's subnets, the CA's record with the port's MAC, the MTU, an
// external prefix of one domain only) are checked the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GATEWAY_DATACENTER_PORT, addCustomerRoute, addLookupRecord, addProviderAddress, customerRoute, emptyPolicy, gatewayTenantPort, lookupRecord, providerAddress,
  type HnvPolicy,
} from '../hnv/index.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { HnvGateways, type GatewayParams } from './hnv-gateways.ts';
import type { SwitchSlot } from './switch-registry.ts';

const BLUE = '{11111111-2222-3333-4444-000000000001}', GREEN = '{33333333-2222-3333-4444-000000000003}', TEAL = '{44444444-2222-3333-4444-000000000004}';
const PA = '192.168.100.1';
const says = (re: RegExp) => (e: Error): boolean => re.test(e.message);

function policy(): HnvPolicy {
  let p = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: PA, InterfaceIndex: 1, PrefixLength: 24 }));
  // Green and Teal overlap (10.5.0.0/16 holds 10.5.1.0/24): only one of them may be forwarded.
  for (const [rdid, vsid, prefix, ca, mac] of [[BLUE, 5001, '10.0.0.0/24', '10.0.0.254', '02155DFE0001'], [GREEN, 7001, '10.5.0.0/16', '10.5.0.254', '02155DFE0003'],
    [TEAL, 8001, '10.5.1.0/24', '10.5.1.254', '02155DFE0004']] as const) {
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: '0.0.0.0' }));
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: '0.0.0.0/0', NextHop: ca }));
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: ca, VirtualSubnetID: vsid, MACAddress: mac, ProviderAddress: PA, Rule: 'TranslationMethodEncap' }));
  }
  // A CA whose record is another host's.
  return addLookupRecord(p, lookupRecord({ CustomerAddress: '10.0.0.253', VirtualSubnetID: 5001, MACAddress: '02155DFE0009', ProviderAddress: '192.168.100.2', Rule: 'TranslationMethodEncap' }));
}

test('gateway store: inputs checked, ports on both switches, kept across a new store, removed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-gw-'));
  const ext = await VirtualSwitch.create({ name: 'Ext', type: 'External' });
  const dc = await VirtualSwitch.create({ name: 'DC', type: 'Internal' });
  const dc2 = await VirtualSwitch.create({ name: 'DC2', type: 'Internal' });
  const switches = new Map([ext, dc, dc2].map((sw) => [sw.name.toLowerCase(), { sw } as SwitchSlot]));
  const events: string[] = [];
  const host = { policy, switchNamed: (n: string) => switches.get(n.toLowerCase()), event: (_l: string, code: string) => { events.push(code); } };
  const base: GatewayParams = { RoutingDomainID: BLUE, VirtualSubnetID: 5001, CustomerAddress: '10.0.0.254', ExternalSwitchName: 'Ext', DatacenterSwitchName: 'DC', ExternalAddress: '192.168.200.10' };
  const ports = (sw: VirtualSwitch): string[] => sw.listPorts().map((p) => p.id).sort();
  let s = new HnvGateways(dir, host);
  try {
    await s.load();
    const refused: [Partial<GatewayParams>, RegExp][] = [
      [{ ExternalSwitchName: 'nope' }, /^ExternalSwitchName: no virtual switch named 'nope'$/],
      [{ DatacenterSwitchName: 'Ext' }, /^DatacenterSwitchName: switch 'Ext' is External, not Internal$/],
      [{ ExternalSwitchName: 'DC' }, /^ExternalSwitchName: switch 'DC' is Internal, not External$/],
      [{ RoutingDomainID: 'not-a-guid' }, /^RoutingDomainID: 'not-a-guid' is not a GUID$/],
      [{ VirtualSubnetID: 7001 }, /^RoutingDomainID: routing domain .* has no customer route in virtual subnet 7001$/],
      [{ CustomerAddress: '10.0.0.77' }, /^CustomerAddress: no lookup record for 10\.0\.0\.77 in virtual subnet 5001/],
      [{ CustomerAddress: '10.0.0.253' }, /^CustomerAddress: the lookup record of 10\.0\.0\.253 names provider address 192\.168\.100\.2, not one of this host's$/],
      [{ ExternalAddress: 'x' }, /^ExternalAddress: 'x' is not an IP address$/],
    ];
    for (const [change, re] of refused) await assert.rejects(s.add({ ...base, ...change }), says(re), JSON.stringify(change));

    const shown = await s.add(base);
    assert.deepEqual([shown.Mode, shown.Status, shown.Translations], ['Nat', 'Ok', 0]);
    assert.ok(ports(ext).includes(gatewayTenantPort(5001)) && ports(dc).includes(GATEWAY_DATACENTER_PORT));
    await assert.rejects(s.add(base), says(/^RoutingDomainID: the gateway already serves/));
    await assert.rejects(s.add({ ...base, RoutingDomainID: GREEN, VirtualSubnetID: 7001, CustomerAddress: '10.5.0.254', DatacenterSwitchName: 'DC2' }), says(/^DatacenterSwitchName: the host's gateway is on switches 'Ext' and 'DC'$/));
    const green = { ...base, RoutingDomainID: GREEN, VirtualSubnetID: 7001, CustomerAddress: '10.5.0.254', ExternalAddress: '192.168.200.20', Mode: 'Forwarding' } as const;
    await s.add(green);
    await assert.rejects(s.add({ ...green, RoutingDomainID: TEAL, VirtualSubnetID: 8001, CustomerAddress: '10.5.1.254', ExternalAddress: '192.168.200.30' }), says(/overlap those of \{33333333/));
    s.close();

    // A new store on the same data dir (the daemon restarted; the switches' ports went with the old process).
    for (const id of [gatewayTenantPort(5001), gatewayTenantPort(7001)]) await ext.removePort(id);
    await dc.removePort(GATEWAY_DATACENTER_PORT);
    s = new HnvGateways(dir, host);
    await s.load();
    assert.deepEqual(s.list().map((g) => [g.RoutingDomainID, g.Mode, g.Status]), [[BLUE, 'Nat', 'Ok'], [GREEN, 'Forwarding', 'Ok']]);
    assert.ok(ports(ext).includes(gatewayTenantPort(7001)));

    assert.equal(await s.remove({ RoutingDomainID: GREEN }), 1);
    assert.ok(!ports(ext).includes(gatewayTenantPort(7001)) && ports(ext).includes(gatewayTenantPort(5001)));
    assert.equal(await s.remove({}), 1);
    assert.deepEqual([ports(ext), ports(dc)], [[], []]);
    await assert.rejects(s.remove({}), says(/No network virtualization gateway matches/));
    assert.deepEqual(events, []);
  } finally {
    s.close();
    await Promise.all([ext.close(), dc.close(), dc2.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

test('the gateway follows its lookup record and its switches at once: a new MAC, a record gone and back, the datacenter switch removed and made again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-gw-'));
  const ext = await VirtualSwitch.create({ name: 'Ext', type: 'External' });
  let dc = await VirtualSwitch.create({ name: 'DC', type: 'Internal' });
  const switches = new Map([ext, dc].map((sw) => [sw.name.toLowerCase(), { sw } as SwitchSlot]));
  let current = policy();
  const events: string[] = [];
  const s = new HnvGateways(dir, { policy: () => current, switchNamed: (n: string) => switches.get(n.toLowerCase()), event: (_l: string, code: string) => { events.push(code); } });
  const tenantMac = (): string | undefined => ext.listPorts().find((p) => p.id === gatewayTenantPort(5001))?.policy.mac?.replace(/[:-]/g, '').toUpperCase();
  const status = (): unknown => s.list()[0]?.Status;
  const withRecord = (mac: string | undefined): HnvPolicy => {
    const p = { ...current, lookupRecords: current.lookupRecords.filter((r) => r.customerAddress !== '10.0.0.254') };
    return mac === undefined ? p : addLookupRecord(p, lookupRecord({ CustomerAddress: '10.0.0.254', VirtualSubnetID: 5001, MACAddress: mac, ProviderAddress: PA, Rule: 'TranslationMethodEncap' }));
  };
  try {
    await s.load();
    await s.add({ RoutingDomainID: BLUE, VirtualSubnetID: 5001, CustomerAddress: '10.0.0.254', ExternalSwitchName: 'Ext', DatacenterSwitchName: 'DC', ExternalAddress: '192.168.200.10' });
    assert.equal(tenantMac(), '02155DFE0001');

    current = withRecord('02155DFE00AA');
    await s.policyChanged(current);
    assert.deepEqual([tenantMac(), status()], ['02155DFE00AA', 'Ok'], 'the tenant port has the record\'s new MAC');
    current = withRecord(undefined);
    await s.policyChanged(current);
    assert.equal(tenantMac(), undefined);
    assert.match(String(status()), /^Off: CustomerAddress: no lookup record for 10\.0\.0\.254/);
    current = withRecord('02155DFE0001');
    await s.policyChanged(current);
    assert.deepEqual([tenantMac(), status()], ['02155DFE0001', 'Ok']);
    // Another record's change reaches the gateway in place.
    current = addLookupRecord(current, lookupRecord({ CustomerAddress: '10.0.0.77', VirtualSubnetID: 5001, MACAddress: '00155D000077', ProviderAddress: PA, Rule: 'TranslationMethodEncap' }));
    await s.policyChanged(current);
    assert.deepEqual([tenantMac(), status()], ['02155DFE0001', 'Ok']);

    // Remove-VMSwitch DC, then New-VMSwitch DC: off at once, then on the new switch.
    await dc.close();
    switches.delete('dc');
    await s.switchChanged('DC');
    assert.match(String(status()), /^Off: DatacenterSwitchName: no virtual switch named 'DC'/);
    dc = await VirtualSwitch.create({ name: 'DC', type: 'Internal' });
    switches.set('dc', { sw: dc } as SwitchSlot);
    await s.switchChanged('dc');
    assert.equal(status(), 'Ok');
    assert.deepEqual(dc.listPorts().map((p) => p.id), [GATEWAY_DATACENTER_PORT]);
    await s.switchChanged('Other'); // not the gateway's: nothing happens
    assert.equal(status(), 'Ok');
    assert.ok(events.every((e) => e === 'HNV_GATEWAY_OFF'), events.join());
  } finally {
    s.close();
    await Promise.all([ext.close(), dc.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

test('IPv6 through the gateway: its inputs checked with one-line errors naming the parameter, then served and shown', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-hnv-gw6-'));
  const ext = await VirtualSwitch.create({ name: 'Ext', type: 'External' });
  const dc = await VirtualSwitch.create({ name: 'DC', type: 'Internal' });
  const switches = new Map([ext, dc].map((sw) => [sw.name.toLowerCase(), { sw } as SwitchSlot]));
  // Blue: fd00:b::/64 on-link, its gateway CA fd00:b::fe with the IPv4 CA's MAC (and fd00:b::fd with another); Green fd00:5::/64, Teal fd00:5::/48 (overlapping).
  let p = policy();
  for (const [rdid, vsid, prefix, ca] of [[BLUE, 5001, 'fd00:b::/64', 'fd00:b::fe'], [GREEN, 7001, 'fd00:5::/64', 'fd00:5::fe'], [TEAL, 8001, 'fd00:5::/48', 'fd00:5::fd']] as const) {
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: '::' }));
    p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid, VirtualSubnetID: vsid, DestinationPrefix: '::/0', NextHop: ca }));
  }
  for (const [ca, vsid, mac] of [['fd00:b::fe', 5001, '02155DFE0001'], ['fd00:b::fd', 5001, '02155DFE0007'], ['fd00:5::fe', 7001, '02155DFE0003'], ['fd00:5::fd', 8001, '02155DFE0004']] as const) {
    p = addLookupRecord(p, lookupRecord({ CustomerAddress: ca, VirtualSubnetID: vsid, MACAddress: mac, ProviderAddress: PA, Rule: 'TranslationMethodEncap' }));
  }
  const host = { policy: () => p, switchNamed: (n: string) => switches.get(n.toLowerCase()), event: () => undefined };
  const base: GatewayParams = {
    RoutingDomainID: BLUE, VirtualSubnetID: 5001, CustomerAddress: '10.0.0.254', ExternalSwitchName: 'Ext', DatacenterSwitchName: 'DC', ExternalAddress: '192.168.200.10',
    CustomerIPv6Address: 'fd00:b::fe', ExternalIPv6Address: 'fd99::b', InternalIPv6Prefix: 'fd00:b::/48', ExternalIPv6Prefix: 'fd99:0:b::/48',
  };
  const s = new HnvGateways(dir, host);
  try {
    await s.load();
    const refused: [Partial<GatewayParams>, RegExp][] = [
      [{ ExternalIPv6Address: undefined }, /^ExternalIPv6Address: required with the other IPv6 parameters$/],
      [{ CustomerIPv6Address: '10.0.0.9' }, /^CustomerIPv6Address: 10\.0\.0\.9 is not an IPv6 address$/],
      [{ ExternalIPv6Address: 'fe80::1' }, /^ExternalIPv6Address: fe80::1 is not a global or unique-local unicast address$/],
      [{ InternalIPv6Prefix: undefined }, /^InternalIPv6Prefix: required in Nat mode with IPv6/],
      [{ ExternalIPv6Prefix: 'fd99:0:b::/56' }, /^ExternalIPv6Prefix: fd99:0:b::\/56 is not as long as fd00:b::\/48/],
      [{ InternalIPv6Prefix: 'fd00:b::/96', ExternalIPv6Prefix: 'fd99::/96' }, /^InternalIPv6Prefix: \/96: NPTv6 takes a prefix of \/1 to \/64$/],
      [{ InternalIPv6Prefix: 'fd00:c::/48', ExternalIPv6Prefix: 'fd99:0:c::/48' }, /^InternalIPv6Prefix: fd00:c::\/48 does not hold the domain's fd00:b::\/64/],
      [{ DatacenterIPv6Mtu: 1000 }, /^DatacenterIPv6Mtu: 1000 is not an MTU in 1280–9000/],
      [{ CustomerIPv6Address: 'fd00:b::77' }, /^CustomerIPv6Address: no lookup record for fd00:b::77 in virtual subnet 5001/],
      [{ CustomerIPv6Address: 'fd00:b::fd' }, /^CustomerIPv6Address: the lookup record of fd00:b::fd names MAC 02155DFE0007, not 02155DFE0001/],
      [{ Mode: 'Forwarding' }, /^InternalIPv6Prefix: prefix translation is for Nat mode only/],
    ];
    for (const [change, re] of refused) await assert.rejects(s.add({ ...base, ...change }), says(re), JSON.stringify(change));
    const shown = await s.add({ ...base, DatacenterIPv6Mtu: 1400 });
    assert.deepEqual([shown.Status, shown.CustomerIPv6Address, shown.InternalIPv6Prefix, shown.ExternalIPv6Prefix, shown.DatacenterIPv6Mtu], ['Ok', 'fd00:b::fe', 'fd00:b::/48', 'fd99:0:b::/48', 1400]);
    const green = { ...base, RoutingDomainID: GREEN, VirtualSubnetID: 7001, CustomerAddress: '10.5.0.254', ExternalAddress: '192.168.200.20', Mode: 'Forwarding',
      CustomerIPv6Address: 'fd00:5::fe', ExternalIPv6Address: 'fd99::5', InternalIPv6Prefix: undefined, ExternalIPv6Prefix: undefined } as const;
    await s.add(green);
    // Teal, in Nat mode, may not take Blue's external prefix: a reply must name one domain.
    await assert.rejects(s.add({ ...base, RoutingDomainID: TEAL, VirtualSubnetID: 8001, CustomerAddress: '10.5.1.254', CustomerIPv6Address: 'fd00:5::fd', InternalIPv6Prefix: 'fd00:5::/48', ExternalIPv6Prefix: 'fd99:0:b::/48' }),
      says(/^ExternalIPv6Prefix: fd99:0:b::\/48 overlaps fd99:0:b::\/48 of \{11111111/));
    const [g] = s.list({ RoutingDomainID: GREEN });
    assert.deepEqual([g!.CustomerIPv6Address, g!.ExternalIPv6Prefix, g!.DatacenterIPv6Mtu], ['fd00:5::fe', null, 1500]);
  } finally {
    s.close();
    await Promise.all([ext.close(), dc.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});
