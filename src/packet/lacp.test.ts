// The LACPDU codec: encode → parse returns every field (seeded property); malformed TLVs are
// refused by reason; tshark's `lacp` dissector decodes our frames with the fields we set and
// no expert warning (tshark is required under CI=true, skipped only outside it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../common/prng.ts';
import { parseMac } from './address.ts';
import {
  LACPDU_FRAME_LENGTH, LACP_ACTIVITY, LACP_AGGREGATION, LACP_COLLECTING, LACP_DISTRIBUTING, LACP_SYNCHRONIZATION, LACP_TIMEOUT,
  encodeLacpdu, formatLacpState, isLacpFrame, parseLacpdu, type LacpduFields, type LacpInfo,
} from './lacp.ts';
import { pcapHeader, pcapRecord } from './pcap.ts';

const hasTshark = (() => {
  try { execFileSync('tshark', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
})();

const info = (over: Partial<LacpInfo> = {}): LacpInfo => ({ systemPriority: 32768, system: parseMac('02:15:5d:00:00:01'), key: 9, portPriority: 255, port: 1, state: 0, ...over });
const sample: LacpduFields = {
  src: parseMac('02:15:5d:00:00:11'),
  actor: info({ state: LACP_ACTIVITY | LACP_TIMEOUT | LACP_AGGREGATION | LACP_SYNCHRONIZATION | LACP_COLLECTING | LACP_DISTRIBUTING }),
  partner: info({ systemPriority: 100, system: parseMac('02:15:5d:00:00:02'), key: 17, portPriority: 128, port: 2, state: LACP_ACTIVITY | LACP_AGGREGATION | LACP_SYNCHRONIZATION }),
};

test('encode → parse: every field comes back (property, 2,000 random LACPDUs)', () => {
  const r = seededRandom(0x8809);
  const int = (hi: number) => Math.floor(r() * (hi + 1));
  const randomInfo = (): LacpInfo => ({ systemPriority: int(0xffff), system: Uint8Array.from({ length: 6 }, () => int(255)), key: int(0xffff), portPriority: int(0xffff), port: int(0xffff), state: int(255) });
  for (let i = 0; i < 2000; i++) {
    const f: LacpduFields = { src: Uint8Array.from({ length: 6 }, () => int(255)), actor: randomInfo(), partner: randomInfo(), collectorMaxDelay: int(0xffff) };
    const b = encodeLacpdu(f);
    assert.equal(b.length, LACPDU_FRAME_LENGTH);
    const p = parseLacpdu(b);
    assert.ok(p.ok, p.ok ? '' : p.reason);
    assert.deepEqual({ src: p.src, actor: p.actor, partner: p.partner, collectorMaxDelay: p.collectorMaxDelay }, f);
    assert.equal(p.version, 1);
  }
});

test('malformed LACPDUs are refused by reason; a later version with extra bytes is accepted', () => {
  const good = encodeLacpdu(sample);
  const bad = (at: number, v: number) => { const b = good.slice(); b[at] = v; const p = parseLacpdu(b); return p.ok ? 'ok' : p.reason; };
  assert.equal(bad(14, 2), 'not-lacp', 'Marker protocol subtype');
  assert.equal(bad(12, 0x08), 'not-lacp');
  assert.equal(bad(15, 0), 'bad-lacp-version');
  assert.equal(bad(16, 2), 'bad-lacp-tlv', 'actor TLV type');
  assert.equal(bad(37, 19), 'bad-lacp-tlv', 'partner TLV length');
  assert.equal(bad(56, 4), 'bad-lacp-tlv', 'collector TLV type');
  const short = parseLacpdu(good.subarray(0, 40));
  assert.equal(short.ok ? 'ok' : short.reason, 'not-lacp');
  const v2 = new Uint8Array(good.length + 40);
  v2.set(good);
  v2[15] = 2;
  assert.ok(parseLacpdu(v2).ok);
  assert.ok(isLacpFrame(good));
  assert.equal(formatLacpState(sample.partner.state), 'Activity,Aggregation,Synchronization');
});

test('tshark decodes our LACPDUs with the fields we set, no warnings', { skip: hasTshark || process.env.CI === 'true' ? false : 'tshark not installed' }, () => {
  assert.ok(hasTshark, 'tshark is required under CI (scripts/install-deps.sh)');
  const dir = mkdtempSync(join(tmpdir(), 'vmhost-lacp-'));
  try {
    const file = join(dir, 'lacp.pcap');
    const frames = [encodeLacpdu(sample), encodeLacpdu({ ...sample, actor: info({ state: LACP_ACTIVITY }), partner: info({ system: new Uint8Array(6), key: 0, port: 0, state: 0 }) })];
    writeFileSync(file, Buffer.concat([pcapHeader({}), ...frames.map((f, i) => pcapRecord(f, 1_700_000_000_000_000n + BigInt(i) * 1000n, {}))]));
    const expert = execFileSync('tshark', ['-r', file, '-q', '-z', 'expert,warn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.doesNotMatch(expert, /Errors \(|Warnings \(|Malformed/, expert);
    const cols = ['frame.protocols', '_ws.malformed', 'eth.dst', 'slow.subtype', 'lacp.version', 'lacp.actor.sys_priority', 'lacp.actor.sysid', 'lacp.actor.key', 'lacp.actor.port_priority', 'lacp.actor.port',
      'lacp.actor.state', 'lacp.actor.state.synchronization', 'lacp.actor.state.distributing', 'lacp.partner.sys_priority', 'lacp.partner.sysid', 'lacp.partner.key', 'lacp.partner.port_priority', 'lacp.partner.port',
      'lacp.partner.state', 'lacp.partner.state.collecting', 'lacp.collector.max_delay'];
    const out = execFileSync('tshark', ['-r', file, '-T', 'fields', ...cols.flatMap((c) => ['-e', c])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trimEnd().split('\n').map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i]!, v])));
    assert.deepEqual(rows[0], {
      'frame.protocols': 'eth:ethertype:slow:lacp', '_ws.malformed': '', 'eth.dst': '01:80:c2:00:00:02', 'slow.subtype': '0x01', 'lacp.version': '0x01',
      'lacp.actor.sys_priority': '32768', 'lacp.actor.sysid': '02:15:5d:00:00:01', 'lacp.actor.key': '9', 'lacp.actor.port_priority': '255', 'lacp.actor.port': '1',
      'lacp.actor.state': '0x3f', 'lacp.actor.state.synchronization': '1', 'lacp.actor.state.distributing': '1',
      'lacp.partner.sys_priority': '100', 'lacp.partner.sysid': '02:15:5d:00:00:02', 'lacp.partner.key': '17', 'lacp.partner.port_priority': '128', 'lacp.partner.port': '2',
      'lacp.partner.state': '0x0d', 'lacp.partner.state.collecting': '0', 'lacp.collector.max_delay': '0',
    });
    assert.equal(rows[1]!['lacp.partner.sysid'], '00:00:00:00:00:00', 'a defaulted partner');
    assert.equal(rows[1]!['lacp.actor.state'], '0x01');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
