// Set-VMHost -MacAddressMinimum -MacAddressMaximum: the host's dynamic MAC pool (host/mac-pool.ts).
// Its own route beside Set-VMHost's other groups of settings (PATCH /host/<group>), so each
// group is validated by its own schema; Get-VMHost shows the pool.
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Host } from '../host/index.ts';

const Mac = (description: string) => Type.String({ minLength: 12, maxLength: 17, pattern: '^[0-9A-Fa-f]{2}([-:]?[0-9A-Fa-f]{2}){5}$', description });

const MacPoolBody = Type.Object({
  MacAddressMinimum: Type.Optional(Mac('Lowest dynamic MAC address this host hands out (00-15-5D-38-1F-00, 00:15:5D:38:1F:00 or 00155D381F00)')),
  MacAddressMaximum: Type.Optional(Mac('Highest dynamic MAC address, in the same OUI (first three bytes) as the minimum')),
}, { additionalProperties: false, minProperties: 1 });
type MacPoolBody = Static<typeof MacPoolBody>;

export function registerMacPoolRoutes(app: FastifyInstance, host: Host): void {
  app.patch<{ Body: MacPoolBody }>('/api/v1/host/mac-pool',
    { schema: { summary: 'Set-VMHost -MacAddressMinimum -MacAddressMaximum (answers Get-VMHost)', tags: ['host'], body: MacPoolBody } },
    async (req) => host.setMacPool(req.body));
}
