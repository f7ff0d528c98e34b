// Which switches run the HNV data path: an External switch while the host has a provider
// address (the policy is pushed again on each change), never a Private or Internal one; the
// extension goes when the last provider address does; a switch whose forwarding slot another
// extension holds is reported, not changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HNV_EXTENSION, addProviderAddress, emptyPolicy, providerAddress } from '../hnv/index.ts';
import { VirtualSwitch } from '../switch/index.ts';
import { applyHnv } from './hnv-datapath.ts';

const withPa = addProviderAddress(emptyPolicy(), providerAddress({ ProviderAddress: '192.168.100.1', InterfaceIndex: 1, PrefixLength: 24 }));
const uplink = { localAddress: '127.0.0.1', localPort: 0, remoteAddress: '127.0.0.1', remotePort: 9 };

test('the data path follows the provider addresses on External switches only', async () => {
  const ext = await VirtualSwitch.create({ name: 'ext', type: 'External', uplink });
  const priv = await VirtualSwitch.create({ name: 'priv', type: 'Private' });
  const other = await VirtualSwitch.create({ name: 'other', type: 'External', uplink });
  try {
    const names = (sw: VirtualSwitch) => sw.extensions().map((x) => x.name);
    assert.equal(applyHnv(ext, emptyPolicy()), undefined);
    assert.deepEqual(names(ext), [], 'no provider address: no data path');
    applyHnv(ext, withPa);
    applyHnv(priv, withPa);
    assert.deepEqual(names(ext), [HNV_EXTENSION]);
    assert.deepEqual(names(priv), []);
    assert.deepEqual((ext.extensions()[0]!.status as { providerAddresses: string[] }).providerAddresses, ['192.168.100.1']);
    applyHnv(ext, withPa);
    assert.deepEqual(names(ext), [HNV_EXTENSION], 'pushed again, not added twice');
    applyHnv(ext, emptyPolicy());
    assert.deepEqual(names(ext), [], 'the last provider address gone: taken off');
    other.addExtension('vmhost.learned-only');
    assert.match(applyHnv(other, withPa) ?? '', /switch 'other' has another forwarding extension enabled/);
  } finally {
    await Promise.all([ext.close(), priv.close(), other.close()]);
  }
});
