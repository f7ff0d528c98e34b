// The CLI's per-host credentials (vmhost extension; PowerShell remoting would use
// -Credential): Set-VMHostCredential stores the token a host accepts, keyed by HOST:PORT in
// <config dir>/credentials.json, and every later cmdlet with -ComputerName of that host sends
// it (src/cli/client.ts). Get- lists them with the pinned TLS fingerprint, never the token.
import { VmhostError } from '../../common/index.ts';
import { computerUrl, hostKey } from '../client.ts';
import type { CmdletContext } from '../cmdlet.ts';
import { defineCmdlet } from '../cmdlet.ts';
import { readCredentials, updateCredential } from '../credentials.ts';
import { cliKnownHosts } from '../known-hosts.ts';

/** HOST:PORT of each -ComputerName, which these cmdlets need explicitly. */
function hostKeys(ctx: CmdletContext): string[] {
  if (!ctx.bound.has('ComputerName')) {
    throw new VmhostError('CLI_MISSING_PARAMETER', `${ctx.cmdlet}: -ComputerName is required (the host the credential is for)`, { cmdlet: ctx.cmdlet });
  }
  return ctx.computerName.map((n) => hostKey(computerUrl(n)));
}

const view = (key: string) => ({ ComputerName: key, TlsCertificateFingerprint: cliKnownHosts().pinned(key) ?? null });

export const setVmHostCredential = defineCmdlet({
  name: 'Set-VMHostCredential',
  synopsis: 'Store the token another host accepts (its <data-dir>/token), used by every cmdlet with -ComputerName of that host',
  params: { Token: { type: 'string', mandatory: true, help: 'The host\'s API token' } },
  supportsShouldProcess: true,
  view: { columns: ['ComputerName', 'TlsCertificateFingerprint'].map((c) => ({ label: c, value: c })) },
  async run(args, ctx) {
    const keys = hostKeys(ctx);
    for (const key of keys) if (ctx.shouldProcess(key)) updateCredential(key, { Token: args.Token });
    return args.PassThru ? keys.map(view) : undefined;
  },
});

export const getVmHostCredential = defineCmdlet({
  name: 'Get-VMHostCredential',
  synopsis: 'List the hosts this CLI has a credential for, with their pinned TLS certificate fingerprint',
  params: {},
  view: { columns: ['ComputerName', 'TlsCertificateFingerprint'].map((c) => ({ label: c, value: c })) },
  async run(_args, ctx) {
    const stored = Object.keys(readCredentials());
    if (!ctx.bound.has('ComputerName')) return stored.map(view);
    return hostKeys(ctx).map((key) => {
      if (!stored.includes(key)) throw new VmhostError('NOT_FOUND', `no credential is stored for ${key}`, { host: key });
      return view(key);
    });
  },
});

export const removeVmHostCredential = defineCmdlet({
  name: 'Remove-VMHostCredential',
  synopsis: 'Forget the token stored for a host',
  params: {},
  supportsShouldProcess: true,
  async run(_args, ctx) {
    const stored = readCredentials();
    for (const key of hostKeys(ctx)) {
      if (!stored[key]) throw new VmhostError('NOT_FOUND', `no credential is stored for ${key}`, { host: key });
      if (ctx.shouldProcess(key)) updateCredential(key, undefined);
    }
  },
});
