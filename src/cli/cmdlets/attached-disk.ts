// VHD cmdlets work on files directly, but a file a running VM holds is open (and locked) in the
// local daemon's block server. So its owner answers for it: Resize-VHD resizes it online,
// Get-VHD/Test-VHD describe its live state, and a refusal of our lock (VHD_IN_USE) names the
// VM that holds it. With no daemon reachable, no VM we know of holds the file.
import { VmhostError, isVmhostError } from '../../common/index.ts';
import type { VirtualHardDisk } from '../../storage/index.ts';
import type { CmdletContext } from '../cmdlet.ts';
import { ApiClient, resolveEndpoint } from '../client.ts';

function localDaemon(ctx: CmdletContext): ApiClient | undefined {
  try {
    return new ApiClient(resolveEndpoint(ctx.computerName[0], ctx.warn));
  } catch {
    return undefined;
  }
}

/** Asks the daemon; undefined when it does not hold the file (NOT_ATTACHED) or cannot be reached or refuses us. */
async function askOwner<T>(ctx: CmdletContext, method: string, route: string, body?: unknown): Promise<T | undefined> {
  const api = localDaemon(ctx);
  if (!api) return undefined;
  try {
    return await api.call<T>(method, route, body);
  } catch (e) {
    if (isVmhostError(e) && ['NOT_ATTACHED', 'CONNECTION_FAILED', 'AUTH_FAILED'].includes(e.code)) return undefined;
    throw e;
  }
}

/**
 * Resize through the daemon when a running VM holds the file (the guest sees the new size at
 * once). Returns false when no VM holds it (or no daemon runs): the caller resizes the file.
 */
export async function resizeOnline(ctx: CmdletContext, path: string, size: number): Promise<boolean> {
  const r = await askOwner(ctx, 'POST', '/vhd/resize', { Path: path, SizeBytes: size });
  if (r !== undefined) ctx.verbose(`${path} is attached to a running VM: resized online by the host`);
  return r !== undefined;
}

/** Get-VHD of a file the daemon serves, from its live state (Attached True); undefined when it serves none. */
export function describeHeld(ctx: CmdletContext, path: string): Promise<VirtualHardDisk | undefined> {
  return askOwner<VirtualHardDisk>(ctx, 'POST', '/vhd/describe', { Path: path });
}

/** Test-VHD of a file the daemon serves: its problems; undefined when it serves none. */
export async function testHeld(ctx: CmdletContext, path: string): Promise<string[] | undefined> {
  return (await askOwner<{ Problems: string[] }>(ctx, 'POST', '/vhd/test', { Path: path }))?.Problems;
}

/**
 * A VHD_IN_USE refusal of our lock, with the holder named when the local daemon knows it (a
 * VM's disk or a parent in its chain, or a host mount); otherwise it stays "another process".
 */
export async function nameHolder(ctx: CmdletContext, e: unknown): Promise<unknown> {
  if (!isVmhostError(e, 'VHD_IN_USE')) return e;
  const path = String(e.context['path'] ?? '');
  const held = await askOwner<{ Holder: string | null }>(ctx, 'GET', `/vhd/attached?${new URLSearchParams({ Path: path })}`).catch(() => undefined);
  if (!held?.Holder) return e;
  return new VmhostError('VHD_IN_USE', `${ctx.cmdlet}: ${path} is in use by ${held.Holder}`, { ...e.context, holder: held.Holder }, { cause: e });
}
