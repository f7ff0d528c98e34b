// Backup routes (host/vm-backup.ts): Start-VMBackup and Restore-VMBackup are jobs (202 with the
// job for ?wait=false, else the job's output); Get-VMBackup and Remove-VMBackup answer at once.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host, Job } from '../host/index.ts';
import { ActionQuery, VmRef } from './schemas.ts';
import { ListBackupsQuery, RemoveBackupBody, RestoreBackupBody, StartBackupBody } from './backup-schemas.ts';

type Wait = { Querystring: { wait?: boolean } };

async function answer<T>(reply: FastifyReply, wait: boolean | undefined, run: { job: Job; result: Promise<T> }): Promise<unknown> {
  if (wait === false) return reply.code(202).send(run.job);
  return run.result;
}

export function registerBackupRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['backup'];

  app.post<{ Params: { vm: string } } & Wait & { Body: StartBackupBody }>('/api/v1/vms/:vm/backups',
    { schema: { summary: 'Start-VMBackup: the VM\'s next backup point (full first, then only changed blocks), application-consistent when the guest agent freezes its file systems, else crash-consistent', tags, params: VmRef, querystring: ActionQuery, body: StartBackupBody } },
    async (req, reply) => answer(reply, req.query.wait, host.backupVm(req.params.vm, req.body.Destination, req.body.KeepLast)));

  app.get<{ Querystring: ListBackupsQuery }>('/api/v1/backups',
    { schema: { summary: 'Get-VMBackup: the points in a repository', tags, querystring: ListBackupsQuery } },
    async (req) => host.listBackups(req.query.Path, req.query.VMName));

  app.post<Wait & { Body: RestoreBackupBody }>('/api/v1/backups/restore',
    { schema: { summary: 'Restore-VMBackup: a point\'s disks as new VHDX files, a new VM on them (NewVMName), or over the VM\'s own disks (VMName)', tags, querystring: ActionQuery, body: RestoreBackupBody } },
    async (req, reply) => {
      const b = req.body;
      if (b.VMName !== undefined && (b.NewVMName !== undefined || b.DestinationPath !== undefined)) {
        throw new VmhostError('INVALID_ARGUMENT', 'VMName (restore over the VM\'s disks) goes with neither NewVMName nor DestinationPath', { param: 'VMName' });
      }
      return answer(reply, req.query.wait, b.VMName !== undefined ? host.restoreBackupOver(b.VMName, b.Path, b.BackupId) : host.restoreBackup(b.Path, b.BackupId, b.DestinationPath, b.NewVMName));
    });

  app.post<{ Body: RemoveBackupBody }>('/api/v1/backups/remove',
    { schema: { summary: 'Remove-VMBackup: a point and the later points of its chain; the repository is pruned', tags, body: RemoveBackupBody } },
    async (req) => host.removeBackup(req.body.Path, req.body.BackupId));
}
