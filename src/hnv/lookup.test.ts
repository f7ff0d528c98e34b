// The data path's lookups over random policies (seeded, so a failure reproduces): every record
// is found by CA + VSID and by MAC + VSID and never from another subnet; the route chosen is
// the longest matching prefix of the subnet's own routing domain, checked against a brute
// force over all routes; same-domain checks follow the routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4InPrefix, parseIpv4Address, formatIpv4 } from '../packet/index.ts';
import { HnvTables, sameVirtualSubnet } from './lookup.ts';
import { addCustomerRoute, addLookupRecord, customerRoute, emptyPolicy, lookupRecord, type HnvPolicy } from './policy.ts';
import { seededRandom } from '../common/prng.ts';

const rng = seededRandom;

const rdid = (n: number) => `{00000000-0000-0000-0000-${n.toString(16).padStart(12, '0')}}`;

/** 3 routing domains of 3 subnets each; overlapping 10.x CAs; random routes of random lengths. */
function randomPolicy(r: () => number): HnvPolicy {
  let p = emptyPolicy();
  const pick = (n: number) => Math.floor(r() * n);
  for (let d = 0; d < 3; d++) {
    for (let s = 0; s < 3; s++) {
      const vsid = 5000 + d * 10 + s;
      p = addCustomerRoute(p, customerRoute({ RoutingDomainID: rdid(d + 1), VirtualSubnetID: vsid, DestinationPrefix: `10.0.${s}.0/24`, NextHop: '0.0.0.0' }));
      for (let h = 0; h < 8; h++) {
        const ca = `10.0.${s}.${1 + pick(40)}`;
        if (p.lookupRecords.some((x) => x.virtualSubnetId === vsid && x.customerAddress === ca)) continue;
        p = addLookupRecord(p, lookupRecord({
          CustomerAddress: ca, VirtualSubnetID: vsid, MACAddress: `00155D${(vsid & 0xffff).toString(16).padStart(4, '0')}${h.toString(16).padStart(2, '0')}`,
          ProviderAddress: `192.168.4.${1 + pick(4)}`, Rule: 'TranslationMethodEncap',
        }));
      }
    }
    for (let i = 0; i < 6; i++) {
      const len = pick(33);
      const prefix = `${formatIpv4((pick(2) ? 0x0a000000 : Math.floor(r() * 0xffffffff)) >>> 0)}/${len}`;
      const vsid = 5000 + d * 10 + pick(3);
      const route = customerRoute({ RoutingDomainID: rdid(d + 1), VirtualSubnetID: vsid, DestinationPrefix: prefix, NextHop: `10.0.0.${1 + pick(9)}`, Metric: pick(3) });
      if (!p.customerRoutes.some((x) => x.routingDomainId === route.routingDomainId && x.virtualSubnetId === vsid && x.destinationPrefix === route.destinationPrefix)) p = addCustomerRoute(p, route);
    }
  }
  return p;
}

test('CA + VSID and MAC + VSID find exactly the subnet\'s record (property, 200 policies)', () => {
  const r = rng(0x4e56);
  for (let i = 0; i < 200; i++) {
    const p = randomPolicy(r);
    const t = new HnvTables(p);
    for (const rec of p.lookupRecords) {
      assert.equal(t.lookup(rec.virtualSubnetId, rec.customerAddress), rec);
      assert.equal(t.lookupMac(rec.virtualSubnetId, rec.macAddress.replace(/(..)(?!$)/g, '$1:').toLowerCase()), rec);
      for (const other of [5000, 5011, 5022]) {
        const found = t.lookup(other, rec.customerAddress);
        assert.ok(found === undefined || found.virtualSubnetId === other, 'never a record of another subnet');
      }
    }
    assert.equal(t.lookup(5000, '10.0.0.250'), undefined);
  }
});

test('the route is the longest matching prefix of the subnet\'s routing domain (property vs brute force)', () => {
  const r = rng(0xb10e);
  for (let i = 0; i < 200; i++) {
    const p = randomPolicy(r);
    const t = new HnvTables(p);
    for (let q = 0; q < 50; q++) {
      const vsid = 5000 + Math.floor(r() * 3) * 10 + Math.floor(r() * 3);
      const dst = formatIpv4(r() < 0.5 ? (0x0a000000 | Math.floor(r() * 0x400)) >>> 0 : Math.floor(r() * 0xffffffff) >>> 0);
      const domain = t.routingDomain(vsid);
      const n = parseIpv4Address(dst);
      const matching = p.customerRoutes.filter((x) => {
        const [a, l] = x.destinationPrefix.split('/');
        return x.routingDomainId === domain && ipv4InPrefix(n, parseIpv4Address(a!), Number(l));
      });
      const best = Math.max(-1, ...matching.map((x) => Number(x.destinationPrefix.split('/')[1])));
      const got = t.route(vsid, dst);
      if (best < 0) { assert.equal(got, undefined); continue; }
      assert.ok(got, `a route for ${dst} from ${vsid}`);
      assert.equal(got.routingDomainId, domain, 'never a route of another routing domain');
      assert.equal(Number(got.destinationPrefix.split('/')[1]), best, `longest prefix for ${dst}`);
      assert.equal(got.metric, Math.min(...matching.filter((x) => x.destinationPrefix.endsWith(`/${best}`)).map((x) => x.metric)), 'lowest metric on a tie');
    }
  }
});

test('routing domains: same-domain and same-subnet checks; unknown subnets route nowhere', () => {
  const t = new HnvTables(randomPolicy(rng(1)));
  assert.ok(t.sameRoutingDomain(5000, 5002));
  assert.ok(!t.sameRoutingDomain(5000, 5010), 'Blue and Red do not route to each other');
  assert.ok(!t.sameRoutingDomain(9999, 9999), 'an unknown subnet is in no domain');
  assert.equal(t.route(9999, '10.0.0.1'), undefined);
  assert.ok(sameVirtualSubnet(5001, 5001) && !sameVirtualSubnet(5001, 6001) && !sameVirtualSubnet(undefined, undefined));
  const v6 = new HnvTables(addCustomerRoute(emptyPolicy(), customerRoute({ RoutingDomainID: rdid(1), VirtualSubnetID: 5001, DestinationPrefix: '2001:db8::/64', NextHop: '::' })));
  assert.equal(v6.route(5001, '2001:db8::7')?.destinationPrefix, '2001:db8::/64');
  assert.equal(v6.route(5001, '2001:db9::7'), undefined);
  assert.equal(v6.route(5001, '10.0.0.1'), undefined);
});
