// Users and their credentials (New-/Get-/Set-/Remove-VMHostUser, New-/Remove-VMHostUserToken),
// per-VM console access (Grant-/Revoke-/Get-VMConnectAccess) and the audit log
// (Get-VMHostAudit). All of them are Administrator-only (route-roles.ts).
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import type { AuditLog } from './audit-log.ts';
import { VmRef } from './schemas.ts';
import { AuditQuery, NewUserBody, SetUserBody, UserRef, UserTokenRef, VmConnectBody, VmConnectQuery, VmConnectRef } from './user-schemas.ts';
import type { Users } from './users.ts';

type Named = { Params: { name: string } };

export interface UserRoutesOptions { host: Host; users: Users; audit: AuditLog }

export function registerUserRoutes(app: FastifyInstance, { host, users, audit }: UserRoutesOptions): void {
  const tags = ['users'];
  app.get('/api/v1/users', { schema: { summary: 'Get-VMHostUser', tags } }, async () => users.list());
  app.get<Named>('/api/v1/users/:name', { schema: { summary: 'Get-VMHostUser -Name', tags, params: UserRef } }, async (req) => users.get(req.params.name));
  app.post<{ Body: NewUserBody }>('/api/v1/users', { schema: { summary: 'New-VMHostUser', tags, body: NewUserBody } },
    async (req, reply) => reply.code(201).send(await users.create(req.body)));
  app.patch<Named & { Body: SetUserBody }>('/api/v1/users/:name', { schema: { summary: 'Set-VMHostUser: role or password', tags, params: UserRef, body: SetUserBody } },
    async (req) => users.set(req.params.name, req.body));
  app.delete<Named>('/api/v1/users/:name', { schema: { summary: 'Remove-VMHostUser (its sessions and tokens stop working at once)', tags, params: UserRef } },
    async (req, reply) => {
      await users.remove(req.params.name);
      return reply.code(204).send();
    });
  app.post<Named>('/api/v1/users/:name/tokens', { schema: { summary: 'New-VMHostUserToken: an API token for scripts, shown once', tags, params: UserRef } },
    async (req, reply) => reply.code(201).header('cache-control', 'no-store').send(await users.newToken(req.params.name)));
  app.delete<{ Params: { name: string; id: string } }>('/api/v1/users/:name/tokens/:id',
    { schema: { summary: 'Remove-VMHostUserToken', tags, params: UserTokenRef } },
    async (req, reply) => {
      await users.removeToken(req.params.name, req.params.id);
      return reply.code(204).send();
    });

  const grants = (q: VmConnectQuery) => {
    const vm = q.VMName === undefined ? undefined : host.get(q.VMName);
    const user = q.UserName === undefined ? undefined : users.get(q.UserName);
    const vms = new Map(host.list().map((v) => [v.Id, v]));
    return (user ? [user] : users.list()).flatMap((u) => u.VMConnectAccess
      .filter((id) => vms.has(id) && (vm === undefined || vm.Id === id))
      .map((id) => ({ VMName: vms.get(id)!.Name, VMId: id, UserName: u.Name, ComputerName: host.facts.computerName })));
  };
  app.get<{ Querystring: VmConnectQuery }>('/api/v1/vmconnect-access',
    { schema: { summary: 'Get-VMConnectAccess: who may open which VM\'s console (Administrators always may)', tags: ['console'], querystring: VmConnectQuery } },
    async (req) => grants(req.query));
  app.post<{ Params: { vm: string }; Body: VmConnectBody }>('/api/v1/vms/:vm/vmconnect-access',
    { schema: { summary: 'Grant-VMConnectAccess', tags: ['console'], params: VmRef, body: VmConnectBody } },
    async (req) => {
      const vm = host.get(req.params.vm);
      await users.setVmConnectAccess(req.body.UserName, vm.Id, true);
      return grants({ VMName: vm.Id, UserName: req.body.UserName });
    });
  app.delete<{ Params: { vm: string; user: string } }>('/api/v1/vms/:vm/vmconnect-access/:user',
    { schema: { summary: 'Revoke-VMConnectAccess (open consoles of that user on that VM are closed)', tags: ['console'], params: VmConnectRef } },
    async (req, reply) => {
      await users.setVmConnectAccess(req.params.user, host.get(req.params.vm).Id, false);
      return reply.code(204).send();
    });

  app.get<{ Querystring: AuditQuery }>('/api/v1/audit', { schema: { summary: 'Get-VMHostAudit: every change, who made it and how it ended', tags: ['audit'], querystring: AuditQuery } },
    async (req) => audit.list(req.query));
}
