// planRejoin (member-rejoin.ts), pure: which of a member's returns is a plain start and which a join as new.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRejoin } from './member-rejoin.ts';
import type { EtcdMember } from './etcd-client.ts';

const m = (id: string, name: string, peer: string, isLearner = false): EtcdMember => ({ id, name, peerUrls: [peer], clientUrls: name ? [`${peer}c`] : [], isLearner });
const self = { name: 'etcd2', peerUrl: 'http://10.0.0.2:2380' };

test('a member etcd knows under its name starts as it is', () => {
  assert.deepEqual(planRejoin([m('1', 'etcd1', 'http://10.0.0.1:2380'), m('2', 'etcd2', 'http://10.0.0.2:2380')], self), { action: 'start' });
});

test('a member added back and never started joins as new, with the started members', () => {
  assert.deepEqual(planRejoin([m('1', 'etcd1', 'http://10.0.0.1:2380'), m('3', 'etcd3', 'http://10.0.0.3:2380'), m('9', '', 'http://10.0.0.2:2380', true)], self),
    { action: 'rejoin', addLearner: false, initialCluster: 'etcd1=http://10.0.0.1:2380,etcd3=http://10.0.0.3:2380,etcd2=http://10.0.0.2:2380' });
});

test('a member removed and not added back is added as a learner first', () => {
  assert.deepEqual(planRejoin([m('1', 'etcd1', 'http://10.0.0.1:2380')], self),
    { action: 'rejoin', addLearner: true, initialCluster: 'etcd1=http://10.0.0.1:2380,etcd2=http://10.0.0.2:2380' });
});
