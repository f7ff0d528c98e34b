import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findVolumeMarker } from './csv-marker.ts';
import { checkVolume, removeMarker, writeMarker } from './csv-volume.ts';

test('a volume\'s marker: checked by a node, found from a file below it, refused to another cluster', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmhost-csvunit-'));
  try {
    await writeMarker(dir, { Name: 'v1', Id: 'id-1', Cluster: 'c1' });
    assert.deepEqual(await checkVolume('n1', dir, 'id-1'), { Node: 'n1', Ok: true, Message: `${dir} reached, writable, marker id-1` });
    const other = await checkVolume('n2', dir, 'id-2');
    assert.equal(other.Ok, false);
    assert.match(other.Message, /holds volume 'v1' \(id-1\): not the directory the volume was added from/);
    assert.match((await checkVolume('n3', join(dir, 'nope'), 'id-1')).Message, /is not a directory here/);
    await mkdir(join(dir, 'vms', 'a'), { recursive: true });
    assert.equal((await findVolumeMarker(join(dir, 'vms', 'a', 'disk.vhdx')))?.dir, dir);
    await assert.rejects(writeMarker(dir, { Name: 'v1', Id: 'id-9', Cluster: 'c2' }), /already volume 'v1' of cluster c1/);
    await removeMarker(dir);
    assert.equal(await findVolumeMarker(join(dir, 'vms', 'a', 'disk.vhdx')), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
