// The NAT table alone: one external port per flow until the range is used up (then none, not a
// shared one), the routing domain in the key, replies matched on the remote end too, and idle
// expiry giving ports back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clock } from '../switch/test-support.ts';
import { NAT_PORT_MAX, NAT_PORT_MIN, NatTable, type FlowKey } from './nat-table.ts';

const EXT = 0xc0a8c80a, REMOTE = 0xc0a8c801;
const flow = (rdid: string, caPort: number, protocol = 17): FlowKey => ({ routingDomainId: rdid, protocol, ca: 0x0a00000a, caPort, remote: REMOTE, remotePort: 53 });

test('every external port once, then exhausted; expired flows give their ports back', () => {
  const clock = new Clock();
  const t = new NatTable(clock.now);
  const span = NAT_PORT_MAX - NAT_PORT_MIN + 1;
  const ports = new Set<number>();
  for (let i = 0; i < span; i++) ports.add(t.outbound(flow('{a}', i), EXT)!.extPort);
  assert.equal(ports.size, span);
  assert.equal(t.outbound(flow('{b}', 1), EXT), undefined, 'no port left: refused, never shared');
  assert.equal(t.outbound(flow('{a}', 7), EXT)!.caPort, 7, 'an existing flow keeps its entry');
  clock.advance(121_000);
  const again = t.outbound(flow('{b}', 1), EXT);
  assert.ok(again, 'the idle flows expired and their ports are free again');
  assert.equal(t.size, 1);
});

test('the routing domain is part of the key; a reply must come from the flow remote end', () => {
  const t = new NatTable(new Clock().now);
  const blue = t.outbound(flow('{blue}', 5000), EXT)!, red = t.outbound(flow('{red}', 5000), EXT)!;
  assert.notEqual(blue.extPort, red.extPort);
  assert.equal(t.inbound(EXT, 17, red.extPort, REMOTE, 53)?.routingDomainId, '{red}');
  assert.equal(t.inbound(EXT, 17, red.extPort, REMOTE + 1, 53), undefined, 'another host');
  assert.equal(t.inbound(EXT, 17, red.extPort, REMOTE, 54), undefined, 'another port');
  assert.equal(t.inbound(EXT, 6, red.extPort, REMOTE, 53), undefined, 'another protocol');
});
