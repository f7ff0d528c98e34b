// Global MAC identity (issue 11, point 6) with two daemons — two hosts — and no guests: each
// hands out dynamic MACs from its own pool, derived from its host id, so their addresses are
// disjoint; Set-VMHost -MacAddressMinimum/-MacAddressMaximum changes a pool (validated, kept
// across a restart), Get-VMHost shows it, New-VM, Add-VMNetworkAdapter and Import-VM
// -GenerateNewId take from it, a full pool is refused; an import of a VM id the host already
// has is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from './support/daemon.ts';

interface HostView { MacAddressMinimum: string; MacAddressMaximum: string }
interface Adapter { MacAddress: string }
interface Report { Incompatibilities: { Kind: string }[] }

describe('MAC address pools', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  before(async () => { [a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()]); });
  after(async () => { await Promise.all([a?.stop(), b?.stop()]); });

  const host = async (d: TestDaemon) => JSON.parse(await d.ok('Get-VMHost', '-Json')) as HostView;
  const pool = async (d: TestDaemon) => { const h = await host(d); return [h.MacAddressMinimum, h.MacAddressMaximum]; };
  const macs = async (d: TestDaemon, vm: string) => ((await d.api('GET', `/api/v1/vms/${vm}/network-adapters`)).json as Adapter[]).map((x) => x.MacAddress);
  const inPool = (p: HostView, mac: string) => mac >= p.MacAddressMinimum && mac <= p.MacAddressMaximum;

  test('two hosts: default pools of 256 in 00-15-5D from their host ids; New-VM\'s MACs come from each host\'s pool, disjoint', { timeout: 120_000 }, async () => {
    const [pa, pb] = [await host(a), await host(b)];
    for (const p of [pa, pb]) {
      assert.match(p.MacAddressMinimum, /^00155D[0-9A-F]{4}00$/);
      assert.equal(p.MacAddressMaximum, `${p.MacAddressMinimum.slice(0, 10)}FF`);
    }
    assert.notEqual(pa.MacAddressMinimum, pb.MacAddressMinimum, 'two hosts, two pools');
    const given = new Map<TestDaemon, string[]>();
    for (const d of [a, b]) {
      for (let i = 0; i < 4; i++) await d.ok('New-VM', `pool${i}`);
      given.set(d, (await Promise.all([0, 1, 2, 3].map((i) => macs(d, `pool${i}`)))).flat());
    }
    const [ma, mb] = [given.get(a)!, given.get(b)!];
    assert.equal(new Set(ma).size, 4);
    assert.ok(ma.every((m) => inPool(pa, m)), `${ma} in A's pool`);
    assert.ok(mb.every((m) => inPool(pb, m)), `${mb} in B's pool`);
    assert.deepEqual(ma.filter((m) => mb.includes(m)), [], 'no address handed out by both hosts');
  });

  test('Import-VM -Copy -GenerateNewId takes the importing host\'s pool; a VM id the host already has is refused', { timeout: 120_000 }, async () => {
    const exports = join(a.dataDir, 'exports');
    await mkdir(exports);
    await a.ok('New-VM', 'mover');
    const id = (JSON.parse(await a.ok('Get-VM', 'mover', '-Json')) as { Id: string }).Id;
    await a.ok('Export-VM', 'mover', exports);
    const config = join(exports, 'mover', 'Virtual Machines', `${id}.json`);

    await b.ok('Import-VM', '-Path', config, '-Copy');
    assert.deepEqual(await macs(b, 'mover'), await macs(a, 'mover'), 'a copy with its id keeps its MAC');
    await b.ok('Set-VM', 'mover', '-NewVMName', 'mover-same-id');
    const again = JSON.parse(await b.ok('Compare-VM', '-Path', config, '-Copy', '-Json')) as Report;
    assert.deepEqual(again.Incompatibilities.map((i) => i.Kind).filter((k) => k !== 'MacAddressInUse'), ['DuplicateVmId']);
    const refused = await b.cli('Import-VM', '-Path', config, '-Copy');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(id, 'i'));

    await b.ok('Remove-VM', 'mover-same-id', '-Force');
    await b.ok('Import-VM', '-Path', config, '-Copy', '-GenerateNewId');
    const [mac] = await macs(b, 'mover');
    assert.ok(inPool(await host(b), mac!), `${mac} from B's pool`);
    assert.ok(!inPool(await host(a), mac!));
  });

  test('Set-VMHost -MacAddressMinimum -MacAddressMaximum: refused when not one unicast OUI range; then the only addresses handed out, a full pool refused, kept across a restart', { timeout: 120_000 }, async () => {
    const refusals: [string, string, RegExp][] = [
      ['00-15-5D-AA-00-20', '00-15-5D-AA-00-10', /above MacAddressMaximum/],
      ['00-15-5D-AA-00-10', '00-15-5E-AA-00-20', /another OUI/],
      ['01-00-5E-00-00-01', '01-00-5E-00-00-FF', /multicast/],
      ['00-15-5D-AA-00', '00-15-5D-AA-00-20', /MacAddressMinimum/],
    ];
    const before = await pool(a);
    for (const [min, max, why] of refusals) {
      const r = await a.cli('Set-VMHost', '-MacAddressMinimum', min, '-MacAddressMaximum', max);
      assert.equal(r.code, 2, `${min}..${max}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    assert.deepEqual(await pool(a), before, 'a refused pool changes nothing');
    assert.equal((await a.cli('Set-VMHost')).code, 2, 'nothing to set');

    const set = JSON.parse(await a.ok('Set-VMHost', '-MacAddressMinimum', '00-15-5D-AA-00-10', '-MacAddressMaximum', '00:15:5d:aa:00:11', '-PassThru', '-Json')) as HostView;
    assert.deepEqual([set.MacAddressMinimum, set.MacAddressMaximum], ['00155DAA0010', '00155DAA0011']);
    await a.ok('New-VM', 'narrow');
    await a.ok('Add-VMNetworkAdapter', '-VMName', 'narrow');
    assert.deepEqual((await macs(a, 'narrow')).sort(), ['00155DAA0010', '00155DAA0011']);
    const full = await a.cli('Add-VMNetworkAdapter', '-VMName', 'narrow');
    assert.equal(full.code, 4, full.stderr);
    assert.match(full.stderr, /All 2 addresses of this host's MAC pool/);

    const bBefore = await pool(b);
    await Promise.all([a.terminate(), b.terminate()]);
    await Promise.all([a.launch(), b.launch()]);
    assert.deepEqual(await pool(a), ['00155DAA0010', '00155DAA0011'], 'the set pool is kept');
    assert.deepEqual(await pool(b), bBefore, 'the default pool follows the host id, which is kept');
  });
});
