// New-/Set-VMSwitch's adapter rules, as Hyper-V reads them: -NetAdapterName implies External,
// External needs an adapter, one External switch per adapter, -SwitchType Private unbinds;
// and the switch file keeps the adapter's name, not its endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedBinding, newBinding, persistedConfig, restoredConfig } from './switch-binding.ts';
import { NetAdapters, parseNetAdapter } from './net-adapters.ts';
import type { SwitchConfig } from '../switch/index.ts';

const adapters = new NetAdapters([parseNetAdapter('Uplink=udp:127.0.0.1:47001->127.0.0.1:47002'), parseNetAdapter('Spare=udp:127.0.0.1:47003->127.0.0.1:47004')]);
const bound = (map: Record<string, string>) => (n: string) => map[n.toLowerCase()];

test('newBinding: -NetAdapterName implies External; the errors name the parameter', () => {
  assert.deepEqual(newBinding(adapters, { SwitchType: 'Private' }, bound({})), { type: 'Private', adapter: null });
  const ext = newBinding(adapters, { NetAdapterName: 'uplink', AllowManagementOS: false }, bound({}));
  assert.equal(ext.type, 'External');
  assert.equal(ext.adapter?.name, 'Uplink');
  assert.equal(newBinding(adapters, { SwitchType: 'External', NetAdapterInterfaceDescription: 'vmhost UDP tunnel 127.0.0.1:47003 -> 127.0.0.1:47004' }, bound({})).adapter?.name, 'Spare');
  assert.throws(() => newBinding(adapters, {}, bound({})), /^VmhostError: SwitchType: give -SwitchType Private or Internal, or -NetAdapterName/);
  assert.throws(() => newBinding(adapters, { SwitchType: 'External' }, bound({})), /NetAdapterName: an External switch needs -NetAdapterName/);
  assert.throws(() => newBinding(adapters, { SwitchType: 'Internal', NetAdapterName: 'Uplink' }, bound({})), /SwitchType: -NetAdapterName makes an External switch, not Internal/);
  assert.throws(() => newBinding(adapters, { NetAdapterName: 'Uplink' }, bound({ uplink: 'Ext' })), (e: Error & { code?: string }) =>
    e.code === 'INVALID_STATE' && /NetAdapterName: network adapter 'Uplink' is already bound to the External switch 'Ext'/.test(e.message));
});

test('changedBinding: re-bind, convert, no-ops', () => {
  const ext = { switchName: 'Ext', type: 'External', adapterName: 'Uplink', linked: true } as const;
  assert.equal(changedBinding(adapters, ext, { Notes: 'x' } as object, bound({ uplink: 'Ext' })), undefined, 'nothing asked');
  assert.equal(changedBinding(adapters, ext, { NetAdapterName: 'Uplink' }, bound({ uplink: 'Ext' })), undefined, 'already there');
  assert.equal(changedBinding(adapters, ext, { SwitchType: 'External' }, bound({ uplink: 'Ext' })), undefined, 'External stays External');
  assert.equal(changedBinding(adapters, { ...ext, linked: false }, { NetAdapterName: 'Uplink' }, bound({ uplink: 'Ext' }))?.adapter?.name, 'Uplink', 'a degraded switch retries its adapter');
  assert.equal(changedBinding(adapters, ext, { NetAdapterName: 'Spare' }, bound({ uplink: 'Ext' }))?.adapter?.name, 'Spare');
  assert.throws(() => changedBinding(adapters, ext, { NetAdapterName: 'Spare' }, bound({ uplink: 'Ext', spare: 'Other' })), /already bound to the External switch 'Other'/);
  assert.deepEqual(changedBinding(adapters, ext, { SwitchType: 'Private' }, bound({ uplink: 'Ext' })), { type: 'Private', adapter: null });
  const priv = { switchName: 'P', type: 'Private', adapterName: null, linked: false } as const;
  assert.equal(changedBinding(adapters, priv, { NetAdapterName: 'Spare' }, bound({}))?.type, 'External', 'a Private switch becomes External');
  assert.throws(() => changedBinding(adapters, priv, { SwitchType: 'External' }, bound({})), /NetAdapterName: an External switch needs/);
});

test('the switch file keeps the adapter name; a restart opens whatever that name is declared as now', () => {
  const config: SwitchConfig = {
    settings: { name: 'Ext', type: 'External', macAgeingSeconds: 300, maxFrameBytes: 9018, maxLearnedAddressesPerPort: 1024, maxLearnedAddresses: 65536, minimumBandwidthMode: 'Weight', defaultFlowMinimumBandwidthWeight: 1, defaultFlowMinimumBandwidthAbsolute: 1e6, uplink: adapters.get('Uplink')!.uplink },
    ports: [], extensions: [],
  };
  const saved = persistedConfig(config, 'Uplink');
  assert.equal('uplink' in saved.settings, false);
  assert.equal(persistedConfig(config, null), config, 'a switch without an adapter is saved as it is');
  const moved = new NetAdapters([parseNetAdapter('Uplink=udp:127.0.0.1:48001->127.0.0.1:48002')]);
  assert.deepEqual(restoredConfig(moved, saved, 'uplink').config?.settings.uplink, moved.adapter('Uplink')!.uplink);
  const gone = restoredConfig(new NetAdapters(), saved, 'Uplink');
  assert.equal(gone.config, null);
  assert.equal(gone.degraded.settings.uplink, undefined);
  assert.equal(gone.degraded.settings.type, 'External');
});
