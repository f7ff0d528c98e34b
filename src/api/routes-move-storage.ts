// Move-VMStorage: a job (answered as the VM routes' lifecycle actions are: {Job, VM}, or 202
// with the job for ?wait=false). The body takes Hyper-V's parameters; the host checks the
// paths against the VM's files and the destination (host/vm-move-storage.ts).
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Host } from '../host/index.ts';
import { ActionQuery, VmRef } from './schemas.ts';
import { answerJob } from './routes-vms.ts';

const HostPath = (description: string) => Type.String({ minLength: 1, maxLength: 4096, description });

export const MoveStorageBody = Type.Object({
  DestinationStoragePath: Type.Optional(HostPath('Absolute folder for every disk file (whole chains, checkpoint files included) and, in <path>/Snapshots, the checkpoint records')),
  VirtualMachinePath: Type.Optional(HostPath('Refused: the configuration stays in the host\'s data folder')),
  SnapshotFilePath: Type.Optional(HostPath('Absolute folder for the checkpoint records and memory')),
  Vhds: Type.Optional(Type.Array(Type.Object({
    SourceFilePath: HostPath('A disk file of the VM (a drive\'s file or one of its parents)'),
    DestinationFilePath: HostPath('Where that file goes (absolute; must not exist)'),
  }, { additionalProperties: false }), { minItems: 1, maxItems: 256 })),
}, { additionalProperties: false });
export type MoveStorageBody = Static<typeof MoveStorageBody>;

export function registerMoveStorageRoutes(app: FastifyInstance, host: Host): void {
  app.post<{ Params: { vm: string }; Querystring: { wait?: boolean }; Body: MoveStorageBody }>('/api/v1/vms/:vm/move-storage',
    { schema: { summary: 'Move-VMStorage (a running VM\'s disks are mirrored live)', tags: ['storage'], params: VmRef, querystring: ActionQuery, body: MoveStorageBody } },
    async (req, reply) => answerJob(reply, req.query.wait, host.moveStorage(req.params.vm, req.body)));
}
