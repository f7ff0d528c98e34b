// The LACP machines of two teams wired back to back (every LACPDU encoded and parsed, as on
// the wire), on a fake clock in 100 ms steps: Active/Active and Active/Passive form (both
// sides Collecting/Distributing after the aggregate wait), Passive/Passive never does; a
// partner silent on one member takes it out of distribution at 3 × the periodic interval it
// asked for (3 s Fast, 90 s Slow), not before, then unselects it, and it comes back; members
// facing two partners form two aggregators, the larger carries and the other waits as Standby,
// and a member recabled to the other partner moves aggregator (the larger one changing with it);
// a disabled link stops at once; LACPDUs are rate-limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeLacpdu, formatLacpState, parseLacpdu, parseMac } from '../packet/index.ts';
import { LacpTeam, type LacpActor, type LacpTimer } from './lacp.ts';

const actor = (n: number, over: Partial<LacpActor> = {}): LacpActor => ({ systemPriority: 32768, system: parseMac(`02:00:00:00:00:0${n}`), key: 1, active: true, timer: 'Fast', ...over });

/** Teams a and b, member i of one facing member i of the other; `cut` holds 'a0' to drop what a's member 0 sends. */
function wire(aActor: LacpActor, bActor: LacpActor, members = 2) {
  const ports = Array.from({ length: members }, (_, i) => i + 1);
  const a = new LacpTeam(aActor, ports), b = new LacpTeam(bActor, ports);
  let now = 0;
  const cut = new Set<string>();
  const sent = { a: 0, b: 0 };
  const deliver = () => {
    for (let moved = true; moved;) {
      moved = false;
      for (const [from, to, name] of [[a, b, 'a'], [b, a, 'b']] as const) {
        for (const [i, f] of from.transmit(now)) {
          sent[name]++;
          moved = true;
          if (cut.has(`${name}${i}`)) continue;
          const p = parseLacpdu(encodeLacpdu({ src: parseMac('02:00:00:00:01:01'), ...f }));
          assert.ok(p.ok);
          to.receive(i, p, now);
        }
      }
    }
  };
  const advance = (ms: number) => {
    for (const end = now + ms; now < end;) { now += 100; a.tick(now); b.tick(now); deliver(); }
  };
  for (const t of [a, b]) for (let i = 0; i < members; i++) t.setEnabled(i, true, now);
  deliver();
  /** ms until `cond` holds, in steps. */
  const until = (cond: () => boolean, limit: number): number => {
    const start = now;
    while (!cond()) { assert.ok(now - start < limit, `not within ${limit} ms`); advance(100); }
    return now - start;
  };
  const all = (t: LacpTeam) => t.status().every((s) => s.distributing && s.collecting);
  return { a, b, cut, sent, advance, until, all, now: () => now };
}

test('Active/Active (Fast): both teams reach Collecting/Distributing after the aggregate wait; periodic LACPDUs once a second', () => {
  const w = wire(actor(1), actor(2));
  const took = w.until(() => w.all(w.a) && w.all(w.b), 10_000);
  assert.ok(took >= 2000 && took <= 3000, `formed in ${took} ms (aggregate wait 2 s)`);
  for (const s of [...w.a.status(), ...w.b.status()]) {
    assert.equal(formatLacpState(s.actorState), 'Activity,Timeout,Aggregation,Synchronization,Collecting,Distributing');
    assert.deepEqual([s.rx, s.mux, s.selected], ['Current', 'CollectingDistributing', true]);
  }
  assert.deepEqual([...w.a.status()[1]!.partner.system], [2, 0, 0, 0, 0, 2], 'the partner is team b');
  const before = w.sent.a;
  w.advance(10_000);
  assert.equal(w.sent.a - before, 20, 'steady state: one LACPDU per second per member');
  assert.ok(w.all(w.a) && w.all(w.b));
});

test('Active/Passive forms; Passive/Passive never sends a LACPDU and never aggregates', () => {
  const w = wire(actor(1), actor(2, { active: false }));
  w.until(() => w.all(w.a) && w.all(w.b), 10_000);
  assert.equal(formatLacpState(w.b.status()[0]!.actorState), 'Timeout,Aggregation,Synchronization,Collecting,Distributing');

  const p = wire(actor(1, { active: false }), actor(2, { active: false }));
  p.advance(20_000);
  assert.deepEqual(p.sent, { a: 0, b: 0 });
  for (const s of [...p.a.status(), ...p.b.status()]) assert.deepEqual([s.rx, s.mux, s.distributing], ['Defaulted', 'Detached', false]);
});

for (const [timer, timeout] of [['Fast', 3000], ['Slow', 90_000]] as [LacpTimer, number][]) {
  test(`a partner silent on one member (${timer} timer) stops it at ${timeout / 1000} s, not before; it rejoins when the partner speaks again`, () => {
    const w = wire(actor(1, { timer }), actor(2, { timer }));
    w.until(() => w.all(w.a) && w.all(w.b), 10_000);
    w.advance(timer === 'Slow' ? 40_000 : 1000); // mid-period: the last LACPDU from b's member 0 came some time ago
    // The last LACPDU a hears on member 0 is b's next one: cut right after it.
    const last = () => w.a.status()[0]!.partner;
    const heard = w.sent.b;
    w.until(() => w.sent.b > heard, timeout);
    const lastAt = w.now();
    w.cut.add('b0');
    w.until(() => !w.a.distributing(0), timeout * 2);
    const lost = w.now() - lastAt;
    console.log(`# ${timer}: member out of distribution ${lost} ms after the partner's last LACPDU`);
    assert.ok(lost >= timeout && lost <= timeout + 100, `${lost} ms`);
    assert.equal(w.a.status()[0]!.rx, 'Expired');
    assert.ok(w.a.distributing(1), 'the other member carries on');
    assert.equal(last().state & 0x08, 0, 'partner no longer in sync');
    w.until(() => w.a.status()[0]!.rx === 'Defaulted', 3100);
    assert.equal(w.a.status()[0]!.selected, false);
    w.until(() => !w.b.distributing(0), 1000); // a's LACPDUs say it is out of sync: b stops too
    assert.ok(w.b.distributing(1));

    w.cut.delete('b0');
    const back = w.until(() => w.a.distributing(0) && w.b.distributing(0), 40_000);
    console.log(`# ${timer}: member back in ${back} ms`);
  });
}

test('members facing two partners form one aggregator per partner; the one with most members carries, the other is Standby; a moved member moves aggregator', () => {
  // Team a's members 0 and 1 face team b, its member 2 faces a third system c (the stubs: LACP teams of their own).
  const a = new LacpTeam(actor(1), [1, 2, 3]), b = new LacpTeam(actor(2), [1, 2, 3]), c = new LacpTeam(actor(3, { key: 7 }), [1, 2, 3]);
  const link = new Map<LacpTeam, Map<number, [LacpTeam, number]>>([[a, new Map()], [b, new Map()], [c, new Map()]]);
  const connect = (t: LacpTeam, i: number, u: LacpTeam, j: number) => { link.get(t)!.set(i, [u, j]); link.get(u)!.set(j, [t, i]); };
  connect(a, 0, b, 0); connect(a, 1, b, 1); connect(a, 2, c, 2);
  for (const t of [a, b, c]) for (let i = 0; i < 3; i++) t.setEnabled(i, true, 0);
  let now = 0;
  const run = (ms: number) => {
    for (const end = now + ms; now < end;) {
      now += 100;
      for (const t of [a, b, c]) {
        t.tick(now);
        for (const [i, f] of t.transmit(now)) {
          const p = parseLacpdu(encodeLacpdu({ src: new Uint8Array(6), ...f }));
          assert.ok(p.ok);
          const to = link.get(t)!.get(i);
          to?.[0].receive(to[1], p, now);
        }
      }
    }
  };
  const view = (t: LacpTeam) => t.status().map((s) => [s.aggregator, s.standby, s.distributing]);
  run(10_000);
  assert.deepEqual(a.status().map((s) => s.rx), ['Current', 'Current', 'Current'], 'every member hears its partner');
  assert.deepEqual(view(a), [[1, false, true], [1, false, true], [3, true, false]], 'aggregator 1 (b, two members) carries; aggregator 3 (c) is Standby');
  assert.deepEqual(a.status().map((s) => s.mux), ['CollectingDistributing', 'CollectingDistributing', 'Waiting']);
  assert.deepEqual([b.distributing(0), b.distributing(1), c.distributing(2)], [true, true, false], 'c never hears a in sync, so never sends to it');

  // Member 1 is recabled from b to c: it leaves aggregator 1 and joins c's, now the larger.
  link.get(b)!.delete(1);
  connect(a, 1, c, 1);
  run(15_000);
  assert.deepEqual(view(a), [[1, true, false], [2, false, true], [2, false, true]], 'aggregator 2 (c: members 1 and 2) carries; member 0 (b) Standby');
  assert.deepEqual([c.distributing(1), c.distributing(2), b.distributing(0)], [true, true, false]);
  assert.equal([...a.status()[1]!.partner.system].at(-1), 3, 'member 1\'s partner is c');

  const w = wire(actor(1), actor(2));
  w.until(() => w.all(w.a), 10_000);
  w.a.setEnabled(1, false, w.now());
  assert.deepEqual([w.a.distributing(1), w.a.collecting(1), w.a.status()[1]!.rx], [false, false, 'PortDisabled']);
  assert.ok(w.a.distributing(0));
});

test('the Transmit machine sends at most 3 LACPDUs a second whatever changes', () => {
  const t = new LacpTeam(actor(1), [1]);
  t.setEnabled(0, true, 0);
  let n = 0;
  for (let now = 0; now < 1000; now += 10) {
    t.setEnabled(0, now % 20 === 0, now); // flapping link: every change wants a LACPDU
    n += t.transmit(now).length;
  }
  assert.ok(n <= 3, `${n} LACPDUs in 1 s`);
});
