// Packet capture routes (vmhost extension; Hyper-V 2012 R2 has no capture cmdlet):
// Start-VMSwitchCapture / Stop-VMSwitchCapture, on the whole switch or one VM adapter's port.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { CaptureQuery, StartCaptureBody, SwitchRef } from './schemas.ts';

type Sw = { Params: { name: string } };

export function registerSwitchCaptureRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['network'];
  app.post<Sw & { Body: StartCaptureBody }>('/api/v1/switches/:name/capture',
    { schema: { summary: 'Start-VMSwitchCapture (pcap of the switch or of one VM adapter\'s port)', tags, params: SwitchRef, body: StartCaptureBody } },
    async (req, reply) => reply.code(201).send(await host.network.captures.start(req.params.name, req.body)));
  app.delete<Sw & { Querystring: CaptureQuery }>('/api/v1/switches/:name/capture',
    { schema: { summary: 'Stop-VMSwitchCapture (returns the file and its frame count)', tags, params: SwitchRef, querystring: CaptureQuery } },
    async (req) => host.network.captures.stop(req.params.name, req.query));
}
