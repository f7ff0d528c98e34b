// Storage routes: a VM's hard disk and DVD drives, disk counters (Measure-VM), online resize
// of attached disks, new dynamic disk files, and host mounts of disk files (Mount-VHD) served over NBD.
import type { FastifyInstance } from 'fastify';
import { VmhostError } from '../common/index.ts';
import type { Host } from '../host/index.ts';
import { createDynamicDisk } from '../storage/index.ts';
import {
  AddDvdDriveBody, AddHardDriveBody, DriveSlotQuery, DvdSlotQuery, MountBody, NewVhdBody, PathQuery, ResizeAttachedBody, SetDvdDriveBody, SetHardDriveBody, VmRef,
} from './schemas.ts';

type VmParams = { Params: { vm: string } };

export function registerStorageRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['storage'];
  const drives = host.drives;

  app.get<VmParams>('/api/v1/vms/:vm/hard-drives', { schema: { summary: 'Get-VMHardDiskDrive (PoolName: its VHD resource pool)', tags, params: VmRef } },
    async (req) => drives.listHard(req.params.vm).map((d) => ({ ...d, PoolName: host.pools.poolName('VHD', d.VMId, d.Id) })));

  app.post<VmParams & { Body: AddHardDriveBody }>('/api/v1/vms/:vm/hard-drives',
    { schema: { summary: 'Add-VMHardDiskDrive (SCSI hot-plugs into a running VM)', tags, params: VmRef, body: AddHardDriveBody } },
    async (req, reply) => reply.code(201).send(await drives.addHard(req.params.vm, req.body)));

  app.patch<VmParams & { Querystring: DriveSlotQuery; Body: SetHardDriveBody }>('/api/v1/vms/:vm/hard-drives',
    { schema: { summary: 'Set-VMHardDiskDrive (QoS applies at once)', tags, params: VmRef, querystring: DriveSlotQuery, body: SetHardDriveBody } },
    async (req) => drives.setHard(req.params.vm, { ...req.query, ...req.body }));

  app.delete<VmParams & { Querystring: DriveSlotQuery }>('/api/v1/vms/:vm/hard-drives',
    { schema: { summary: 'Remove-VMHardDiskDrive', tags, params: VmRef, querystring: DriveSlotQuery } },
    async (req, reply) => {
      await drives.removeHard(req.params.vm, req.query);
      return reply.code(204).send();
    });

  app.get<VmParams>('/api/v1/vms/:vm/dvd-drives', { schema: { summary: 'Get-VMDvdDrive', tags, params: VmRef } },
    async (req) => drives.listDvd(req.params.vm));

  app.post<VmParams & { Body: AddDvdDriveBody }>('/api/v1/vms/:vm/dvd-drives',
    { schema: { summary: 'Add-VMDvdDrive (read-only ISO)', tags, params: VmRef, body: AddDvdDriveBody } },
    async (req, reply) => reply.code(201).send(await drives.addDvd(req.params.vm, req.body)));

  app.patch<VmParams & { Querystring: { ControllerNumber: number; ControllerLocation: number }; Body: SetDvdDriveBody }>('/api/v1/vms/:vm/dvd-drives',
    { schema: { summary: 'Set-VMDvdDrive -Path (insert, change or eject media; also while running)', tags, params: VmRef, querystring: DvdSlotQuery, body: SetDvdDriveBody } },
    async (req) => drives.setDvd(req.params.vm, { ...req.query, Path: req.body.Path }));

  app.delete<VmParams & { Querystring: { ControllerNumber: number; ControllerLocation: number } }>('/api/v1/vms/:vm/dvd-drives',
    { schema: { summary: 'Remove-VMDvdDrive', tags, params: VmRef, querystring: DvdSlotQuery } },
    async (req, reply) => {
      await drives.removeDvd(req.params.vm, req.query);
      return reply.code(204).send();
    });

  app.get<VmParams>('/api/v1/vms/:vm/disk-metrics', { schema: { summary: 'Per-disk counters (Measure-VM HardDiskMetrics)', tags, params: VmRef } },
    async (req) => drives.metrics(req.params.vm));

  // The CLI's New-VHD writes the file itself; this is for clients without the host's file
  // system (the web console's "New disk"), then attached with POST .../hard-drives.
  app.post<{ Body: NewVhdBody }>('/api/v1/vhd',
    { schema: { summary: 'New-VHD -Dynamic on the daemon\'s host (format by extension; the file must not exist)', tags, body: NewVhdBody } },
    async (req, reply) => {
      if (!req.body.Path.startsWith('/')) {
        throw new VmhostError('INVALID_ARGUMENT', `Path: must be an absolute path on the host (got '${req.body.Path}')`, { param: 'Path' });
      }
      await createDynamicDisk(req.body.Path, req.body.SizeBytes);
      return reply.code(201).send({ Path: req.body.Path, Size: req.body.SizeBytes, VhdType: 'Dynamic', VhdFormat: req.body.Path.toLowerCase().endsWith('.vhd') ? 'VHD' : 'VHDX' });
    });

  app.post<{ Body: ResizeAttachedBody }>('/api/v1/vhd/resize',
    { schema: { summary: 'Resize-VHD of a disk a running VM holds (404 NOT_ATTACHED when none does: resize the file directly)', tags, body: ResizeAttachedBody } },
    async (req) => {
      if (!(await drives.resizeAttached(req.body.Path, req.body.SizeBytes))) {
        throw new VmhostError('NOT_ATTACHED', `${req.body.Path} is not attached to a running VM on this host`, { path: req.body.Path });
      }
      return { Path: req.body.Path, Size: req.body.SizeBytes, Online: true };
    });

  app.get<{ Querystring: { Path: string } }>('/api/v1/vhd/attached',
    { schema: { summary: 'Whether a running VM or a host mount holds a disk file (Get-VHD\'s Attached), and who holds it or a chain it is a parent in (Holder)', tags, querystring: PathQuery } },
    async (req) => ({ Path: req.query.Path, Attached: host.storage.servedPath(req.query.Path) !== undefined, Holder: drives.holderOf(req.query.Path) ?? null }));

  // A file this host serves is locked: the VHD cmdlets ask its owner, which answers from the open disk.
  app.post<{ Body: { Path: string } }>('/api/v1/vhd/describe',
    { schema: { summary: 'Get-VHD of a disk file a running VM or a host mount holds, from its live state (404 NOT_ATTACHED when none does)', tags, body: PathQuery } },
    async (req) => drives.describeHeld(req.body.Path));

  app.post<{ Body: { Path: string } }>('/api/v1/vhd/test',
    { schema: { summary: 'Test-VHD of a disk file a running VM or a host mount holds (404 NOT_ATTACHED when none does)', tags, body: PathQuery } },
    async (req) => ({ Path: req.body.Path, Problems: await drives.testHeld(req.body.Path) }));

  app.get('/api/v1/mounts', { schema: { summary: 'Disk files mounted on the host (served over NBD)', tags } }, async () => host.storage.listMounts());

  // A file a running VM holds is already served: the block server refuses to serve it twice.
  app.post<{ Body: MountBody }>('/api/v1/mounts', { schema: { summary: 'Mount-VHD: serve a disk file no VM holds over NBD', tags, body: MountBody } },
    async (req, reply) => reply.code(201).send(await host.storage.mount(req.body.Path, req.body.ReadOnly ?? false, (p) => drives.holderOf(p))));

  app.delete<{ Querystring: { Path: string } }>('/api/v1/mounts', { schema: { summary: 'Dismount-VHD', tags, querystring: PathQuery } },
    async (req, reply) => {
      await host.storage.dismount(req.query.Path);
      return reply.code(204).send();
    });
}
