// VHD cmdlets work on files directly, but a file a running VM holds is open in the local
// daemon's block server: changing it underneath would corrupt it. So they ask the daemon
// first; with no daemon reachable, nothing holds the file and the direct path is safe.
import { isVmhostError } from '../../common/index.ts';
import type { CmdletContext } from '../cmdlet.ts';
import { ApiClient, resolveEndpoint } from '../client.ts';

function localDaemon(ctx: CmdletContext): ApiClient | undefined {
  try {
    return new ApiClient(resolveEndpoint(ctx.computerName[0], ctx.warn));
  } catch {
    return undefined;
  }
}

/**
 * Resize through the daemon when a running VM holds the file (the guest sees the new size at
 * once). Returns false when no VM holds it (or no daemon runs): the caller resizes the file.
 */
export async function resizeOnline(ctx: CmdletContext, path: string, size: number): Promise<boolean> {
  const api = localDaemon(ctx);
  if (!api) return false;
  try {
    await api.call('POST', '/vhd/resize', { Path: path, SizeBytes: size });
    ctx.verbose(`${path} is attached to a running VM: resized online by the host`);
    return true;
  } catch (e) {
    if (isVmhostError(e) && (e.code === 'NOT_ATTACHED' || e.code === 'CONNECTION_FAILED')) return false;
    throw e;
  }
}

/** Get-VHD's Attached: does a running VM (or a host mount) hold the file? False with no daemon. */
export async function isAttached(ctx: CmdletContext, path: string): Promise<boolean> {
  const api = localDaemon(ctx);
  if (!api) return false;
  try {
    return (await api.call<{ Attached: boolean }>('GET', `/vhd/attached?${new URLSearchParams({ Path: path })}`)).Attached;
  } catch (e) {
    // Get-VHD needs no daemon: one that cannot be reached or refuses us holds nothing we know of.
    if (isVmhostError(e) && (e.code === 'CONNECTION_FAILED' || e.code === 'AUTH_FAILED')) return false;
    throw e;
  }
}
