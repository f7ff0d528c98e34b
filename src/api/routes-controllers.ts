// Controller and legacy-port routes: SCSI and IDE controllers, the floppy drive, COM ports.
// Each parses its request into one VmControllers call.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { ComPortBody, ComPortParams, FloppyBody, ScsiControllerQuery, VmRef } from './schemas.ts';

type VmParams = { Params: { vm: string } };

export function registerControllerRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['controllers'];
  const c = host.controllers;

  app.get<VmParams>('/api/v1/vms/:vm/scsi-controllers', { schema: { summary: 'Get-VMScsiController', tags, params: VmRef } }, async (req) => c.scsi(req.params.vm));
  app.post<VmParams>('/api/v1/vms/:vm/scsi-controllers', { schema: { summary: 'Add-VMScsiController (VM off)', tags, params: VmRef } },
    async (req, reply) => reply.code(201).send(await c.addScsi(req.params.vm)));
  app.delete<VmParams & { Querystring: ScsiControllerQuery }>('/api/v1/vms/:vm/scsi-controllers',
    { schema: { summary: 'Remove-VMScsiController (VM off, no drives on it)', tags, params: VmRef, querystring: ScsiControllerQuery } },
    async (req, reply) => {
      await c.removeScsi(req.params.vm, req.query.ControllerNumber);
      return reply.code(204).send();
    });
  app.get<VmParams>('/api/v1/vms/:vm/ide-controllers', { schema: { summary: 'Get-VMIdeController (generation 1)', tags, params: VmRef } }, async (req) => c.ide(req.params.vm));
  app.get<VmParams>('/api/v1/vms/:vm/floppy', { schema: { summary: 'Get-VMFloppyDiskDrive (generation 1)', tags, params: VmRef } }, async (req) => c.floppy(req.params.vm));
  app.put<VmParams & { Body: FloppyBody }>('/api/v1/vms/:vm/floppy', { schema: { summary: 'Set-VMFloppyDiskDrive (VM off)', tags, params: VmRef, body: FloppyBody } },
    async (req) => c.setFloppy(req.params.vm, req.body.Path));
  app.get<VmParams>('/api/v1/vms/:vm/com-ports', { schema: { summary: 'Get-VMComPort', tags, params: VmRef } }, async (req) => c.comPorts(req.params.vm));
  app.put<{ Params: { vm: string; number: number }; Body: ComPortBody }>('/api/v1/vms/:vm/com-ports/:number',
    { schema: { summary: 'Set-VMComPort (COM 2; VM off)', tags, params: ComPortParams, body: ComPortBody } },
    async (req) => c.setComPort(req.params.vm, req.params.number, req.body.Path));
}
