// NIC teaming routes (Windows Server 2012 R2 LBFO cmdlets) and Disable-/Enable-NetAdapter:
// teams of the host's network adapters, which an External switch binds to like an adapter.
import type { FastifyInstance } from 'fastify';
import type { Host } from '../host/index.ts';
import { NetAdapterRef, NewTeamBody, SetTeamBody, TeamMemberBody, TeamMemberRef, TeamQuery, TeamRef } from './schemas.ts';

type Named = { Params: { name: string } };

export function registerLbfoRoutes(app: FastifyInstance, host: Host): void {
  const tags = ['network'];
  const lbfo = host.network.lbfo;
  app.get('/api/v1/lbfo-teams', { schema: { summary: 'Get-NetLbfoTeam', tags } }, async () => lbfo.listTeams());
  app.get<Named>('/api/v1/lbfo-teams/:name', { schema: { summary: 'Get-NetLbfoTeam -Name', tags, params: TeamRef } }, async (req) => lbfo.listTeams(req.params.name)[0]);
  app.post<{ Body: NewTeamBody }>('/api/v1/lbfo-teams', { schema: { summary: 'New-NetLbfoTeam', tags, body: NewTeamBody } },
    async (req, reply) => reply.code(201).send(await lbfo.newTeam(req.body)));
  app.patch<Named & { Body: SetTeamBody }>('/api/v1/lbfo-teams/:name', { schema: { summary: 'Set-NetLbfoTeam', tags, params: TeamRef, body: SetTeamBody } },
    async (req) => lbfo.setTeam(req.params.name, req.body));
  app.delete<Named>('/api/v1/lbfo-teams/:name', { schema: { summary: 'Remove-NetLbfoTeam (refused while it carries a switch)', tags, params: TeamRef } },
    async (req, reply) => {
      await lbfo.removeTeam(req.params.name);
      return reply.code(204).send();
    });
  app.get<{ Querystring: TeamQuery }>('/api/v1/lbfo-team-members', { schema: { summary: 'Get-NetLbfoTeamMember (status and counters)', tags, querystring: TeamQuery } },
    async (req) => lbfo.listMembers(req.query.Team));
  app.post<Named & { Body: TeamMemberBody }>('/api/v1/lbfo-teams/:name/members', { schema: { summary: 'Add-NetLbfoTeamMember', tags, params: TeamRef, body: TeamMemberBody } },
    async (req) => lbfo.addMember(req.params.name, req.body.Name));
  app.delete<{ Params: { name: string; member: string } }>('/api/v1/lbfo-teams/:name/members/:member',
    { schema: { summary: 'Remove-NetLbfoTeamMember (never the last one)', tags, params: TeamMemberRef } },
    async (req) => lbfo.removeMember(req.params.name, req.params.member));
  for (const [op, enabled] of [['disable', false], ['enable', true]] as const) {
    app.post<Named>(`/api/v1/net-adapters/:name/${op}`, { schema: { summary: `${enabled ? 'Enable' : 'Disable'}-NetAdapter (opens / closes its socket)`, tags, params: NetAdapterRef } },
      async (req, reply) => {
        await lbfo.setAdapterEnabled(req.params.name, enabled);
        return reply.code(204).send();
      });
  }
}
