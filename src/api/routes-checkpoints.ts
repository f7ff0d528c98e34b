// Checkpoint routes: Checkpoint-VM, Remove- and Restore-VMSnapshot are jobs (answered as the VM
// routes' lifecycle actions are), Get-VMSnapshot and Rename-VMSnapshot answer at once.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { ActionQuery, VmRef } from './schemas.ts';
import { CheckpointBody, RemoveSnapshotQuery, RenameSnapshotBody, SnapshotRef } from './checkpoint-schemas.ts';
import { answerJob } from './routes-vms.ts';

type VmParams = { Params: { vm: string } };
type SnapParams = { Params: { vm: string; snapshot: string } };
type Wait = { Querystring: { wait?: boolean } };

export function registerCheckpointRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['checkpoints'];

  app.get<VmParams>('/api/v1/vms/:vm/snapshots', { schema: { summary: 'Get-VMSnapshot: the VM\'s checkpoints, oldest first', tags, params: VmRef } },
    async (req) => host.snapshots(req.params.vm));

  app.post<VmParams & Wait & { Body: CheckpointBody }>('/api/v1/vms/:vm/snapshots',
    { schema: { summary: 'Checkpoint-VM (a running VM keeps running; its memory is saved with the checkpoint)', tags, params: VmRef, querystring: ActionQuery, body: CheckpointBody } },
    async (req, reply) => answerJob(reply, req.query.wait, host.checkpoint(req.params.vm, req.body?.SnapshotName)));

  app.patch<SnapParams & { Body: RenameSnapshotBody }>('/api/v1/vms/:vm/snapshots/:snapshot',
    { schema: { summary: 'Rename-VMSnapshot', tags, params: SnapshotRef, body: RenameSnapshotBody } },
    async (req) => host.renameSnapshot(req.params.vm, req.params.snapshot, req.body.NewName));

  app.delete<SnapParams>('/api/v1/vms/:vm/snapshots/:snapshot/saved-state',
    { schema: { summary: 'Remove-VMSavedState -VMSnapshot: the checkpoint\'s memory goes (applying it leaves the VM off)', tags, params: SnapshotRef } },
    async (req) => host.removeSnapshotSavedState(req.params.vm, req.params.snapshot));

  app.delete<SnapParams & { Querystring: { IncludeAllChildSnapshots?: boolean; wait?: boolean } }>('/api/v1/vms/:vm/snapshots/:snapshot',
    { schema: { summary: 'Remove-VMSnapshot: merges its disks (live while the VM runs)', tags, params: SnapshotRef, querystring: RemoveSnapshotQuery } },
    async (req, reply) => answerJob(reply, req.query.wait, host.removeSnapshot(req.params.vm, req.params.snapshot, req.query.IncludeAllChildSnapshots ?? false)));

  app.post<SnapParams & Wait>('/api/v1/vms/:vm/snapshots/:snapshot/restore',
    { schema: { summary: 'Restore-VMSnapshot (a running VM goes on from the checkpoint\'s moment)', tags, params: SnapshotRef, querystring: ActionQuery } },
    async (req, reply) => answerJob(reply, req.query.wait, host.restoreSnapshot(req.params.vm, req.params.snapshot)));
}
