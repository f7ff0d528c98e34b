// The host's users, their tokens and roles (Administrator, Operator, Viewer), per-VM console
// access as Hyper-V's Grant-/Revoke-/Get-VMConnectAccess, and the audit log. Passwords are
// never parameters: see secret-input.ts.
import { defineCmdlet } from '../cmdlet.ts';
import { readPassword } from '../secret-input.ts';
import { clientFor } from './vm-select.ts';

const role = { type: 'enum', values: ['Administrator', 'Operator', 'Viewer'] } as const;
const columns = (names: string[]) => ({ columns: names.map((c) => ({ label: c, value: c })) });
const userView = columns(['Name', 'Role', 'HasPassword', 'Tokens', 'VMConnectAccess']);
const grantView = columns(['VMName', 'UserName', 'ComputerName']);
const auditView = columns(['Time', 'UserName', 'Role', 'Method', 'Route', 'Status', 'Outcome']);
const user = (name: string): string => `/users/${encodeURIComponent(name)}`;
const passwordHelp = 'A file whose first line is the password (else $VMHOST_USER_PASSWORD, else typed without echo, else stdin)';

export const getVMHostUser = defineCmdlet({
  name: 'Get-VMHostUser', synopsis: 'List the host\'s users: role, whether they have a password, their tokens (ids only)',
  params: { Name: { type: 'string' } }, positional: ['Name'], view: userView,
  async run(args, ctx) { return clientFor(ctx).call('GET', args.Name === undefined ? '/users' : user(args.Name)); },
});

export const newVMHostUser = defineCmdlet({
  name: 'New-VMHostUser', synopsis: 'Add a user with a role; with -Password… it can sign in to the web console (tokens: New-VMHostUserToken)',
  params: {
    Name: { type: 'string', mandatory: true },
    Role: { ...role, mandatory: true },
    PasswordFile: { type: 'string', help: passwordHelp },
    NoPassword: { type: 'switch', help: 'A user who signs in with tokens only' },
  },
  positional: ['Name'], view: userView,
  async run(args, ctx) {
    const Password = args.NoPassword ? undefined : await readPassword(ctx.cmdlet, args.PasswordFile, ctx.stderr);
    return clientFor(ctx).call('POST', '/users', { Name: args.Name, Role: args.Role, Password });
  },
});

export const setVMHostUser = defineCmdlet({
  name: 'Set-VMHostUser', synopsis: 'Change a user\'s role (applies to their open sessions at once) or password',
  params: {
    Name: { type: 'string', mandatory: true },
    Role: role,
    PasswordFile: { type: 'string', help: passwordHelp },
    ChangePassword: { type: 'switch', help: 'Set a new password (from -PasswordFile, $VMHOST_USER_PASSWORD, the terminal or stdin)' },
  },
  positional: ['Name'], view: userView,
  async run(args, ctx) {
    const Password = args.ChangePassword || args.PasswordFile !== undefined ? await readPassword(ctx.cmdlet, args.PasswordFile, ctx.stderr) : undefined;
    const r = await clientFor(ctx).call('PATCH', user(args.Name), { Role: args.Role, Password });
    return args.PassThru ? r : undefined;
  },
});

export const removeVMHostUser = defineCmdlet({
  name: 'Remove-VMHostUser', synopsis: 'Remove a user: their sessions, tokens and console grants stop working at once',
  params: { Name: { type: 'string', mandatory: true } }, positional: ['Name'],
  async run(args, ctx) { await clientFor(ctx).call('DELETE', user(args.Name)); },
});

export const newVMHostUserToken = defineCmdlet({
  name: 'New-VMHostUserToken', synopsis: 'A new API token for a user\'s scripts (VMHOST_TOKEN=…); shown this once only',
  params: { UserName: { type: 'string', mandatory: true, aliases: ['Name'] } }, positional: ['UserName'],
  view: columns(['UserName', 'Id', 'Token']),
  async run(args, ctx) { return clientFor(ctx).call('POST', `${user(args.UserName)}/tokens`); },
});

export const removeVMHostUserToken = defineCmdlet({
  name: 'Remove-VMHostUserToken', synopsis: 'Revoke one of a user\'s API tokens (by its Id)',
  params: { UserName: { type: 'string', mandatory: true, aliases: ['Name'] }, Id: { type: 'string', mandatory: true } }, positional: ['UserName', 'Id'],
  async run(args, ctx) { await clientFor(ctx).call('DELETE', `${user(args.UserName)}/tokens/${encodeURIComponent(args.Id)}`); },
});

export const grantVMConnectAccess = defineCmdlet({
  name: 'Grant-VMConnectAccess', synopsis: 'Let a user open a VM\'s console (VNC, serial) whatever their role',
  params: { VMName: { type: 'string', mandatory: true, aliases: ['Name'] }, UserName: { type: 'string', mandatory: true } },
  positional: ['VMName', 'UserName'], view: grantView,
  async run(args, ctx) {
    const r = await clientFor(ctx).call('POST', `/vms/${encodeURIComponent(args.VMName)}/vmconnect-access`, { UserName: args.UserName });
    return args.PassThru ? r : undefined;
  },
});

export const revokeVMConnectAccess = defineCmdlet({
  name: 'Revoke-VMConnectAccess', synopsis: 'Take a user\'s console access to a VM away; their open consoles of it close',
  params: { VMName: { type: 'string', mandatory: true, aliases: ['Name'] }, UserName: { type: 'string', mandatory: true } },
  positional: ['VMName', 'UserName'],
  async run(args, ctx) {
    await clientFor(ctx).call('DELETE', `/vms/${encodeURIComponent(args.VMName)}/vmconnect-access/${encodeURIComponent(args.UserName)}`);
  },
});

export const getVMConnectAccess = defineCmdlet({
  name: 'Get-VMConnectAccess', synopsis: 'Who may open which VM\'s console (Administrators always may and are not listed)',
  params: { VMName: { type: 'string', aliases: ['Name'] }, UserName: { type: 'string' } }, positional: ['VMName'], view: grantView,
  async run(args, ctx) {
    const q = new URLSearchParams();
    if (args.VMName !== undefined) q.set('VMName', args.VMName);
    if (args.UserName !== undefined) q.set('UserName', args.UserName);
    return clientFor(ctx).call('GET', `/vmconnect-access${q.size ? `?${q}` : ''}`);
  },
});

export const getVMHostAudit = defineCmdlet({
  name: 'Get-VMHostAudit', synopsis: 'The audit log: every change (and refused attempt), who made it, how it ended',
  params: { UserName: { type: 'string' }, Since: { type: 'string', help: 'An ISO 8601 time' }, Last: { type: 'int', min: 1 } }, view: auditView,
  async run(args, ctx) {
    const q = new URLSearchParams();
    if (args.UserName !== undefined) q.set('UserName', args.UserName);
    if (args.Since !== undefined) q.set('Since', args.Since);
    if (args.Last !== undefined) q.set('Last', String(args.Last));
    return clientFor(ctx).call('GET', `/audit${q.size ? `?${q}` : ''}`);
  },
});
