// Turning -Name patterns into VMs, as Hyper-V does: wildcards select any number (also none);
// a plain name that matches nothing is an error naming it.
import { VmhostError } from '../../common/index.ts';
import type { VmView } from '../../host/index.ts';
import { ApiClient, resolveEndpoint } from '../client.ts';
import type { CmdletContext } from '../cmdlet.ts';
import { hasWildcard, matchWildcard } from '../wildcard.ts';

export function clientFor(ctx: CmdletContext): ApiClient {
  const names = ctx.computerName;
  if (names.length > 1) throw new VmhostError('CLI_INVALID_PARAMETER', `${ctx.cmdlet}: parameter -ComputerName: one host at a time is supported`);
  return new ApiClient(resolveEndpoint(names[0], ctx.warn));
}

export async function selectVms(api: ApiClient, names: readonly string[] | undefined): Promise<VmView[]> {
  const all = await api.call<VmView[]>('GET', '/vms');
  if (!names) return all;
  const out: VmView[] = [];
  for (const pattern of names) {
    const hits = all.filter((vm) => (hasWildcard(pattern) ? matchWildcard(pattern, vm.Name) : vm.Name.toLowerCase() === pattern.toLowerCase()));
    if (hits.length === 0 && !hasWildcard(pattern)) {
      throw new VmhostError('NOT_FOUND', `Hyper-V was unable to find a virtual machine with name '${pattern}'`, { vm: pattern });
    }
    for (const h of hits) if (!out.some((o) => o.Id === h.Id)) out.push(h);
  }
  return out;
}

/**
 * The loop of every per-VM cmdlet: selects the VMs (-Name/-VMName patterns), calls `call`
 * for each in order and returns the answers. A failure stops at that VM, as in Hyper-V.
 */
export async function perVm<T>(ctx: CmdletContext, names: readonly string[] | undefined, call: (api: ApiClient, vm: VmView) => Promise<T>): Promise<T[]> {
  const api = clientFor(ctx);
  const out: T[] = [];
  for (const vm of await selectVms(api, names)) out.push(await call(api, vm));
  return out;
}

/** PowerShell unwraps a pipeline of one object: so does the output of a single plain name. */
export function oneOrMany<T>(items: T[], names: readonly string[] | undefined): T | T[] {
  return names && names.length === 1 && !hasWildcard(names[0]!) && items.length === 1 ? items[0]! : items;
}

export const vmNameParam = {
  type: 'string', array: true, wildcards: true, aliases: ['VMName'], help: 'VM name(s); wildcards allowed',
} as const;

export const vmNameMandatory = { ...vmNameParam, mandatory: true } as const;
