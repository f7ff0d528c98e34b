// Copy-VMFile (Hyper-V's Guest Services): a file on the daemon's host into a running guest,
// through the agent's chunked writefile. Here: the parameter checks (each error names the
// parameter the admin typed) and the translation of the agent's refusals into typed errors
// that say which switch would have allowed the copy.
import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { VmhostError, isVmhostError } from '../common/index.ts';
import { invalid } from './invalid-argument.ts';
import type { JobHandle } from './jobs.ts';
import type { VmRuntime } from './vm-runtime.ts';

export interface CopyFileParams {
  SourcePath: string;
  DestinationPath: string;
  /** Hyper-V 2012 R2 copies only from the host to the guest: 'Host' is the one value. */
  FileSource: string;
  CreateFullPath?: boolean;
  Force?: boolean;
}

/** What a finished copy reports (-PassThru). */
export interface CopyFileResult {
  VMName: string;
  VMId: string;
  SourcePath: string;
  DestinationPath: string;
  Size: number;
  ElapsedMilliseconds: number;
}

export const GUEST_SERVICE = 'Guest Service Interface';

/**
 * Everything that can be refused before the guest is asked; returns the source's size.
 * `serviceEnabled`: the VM offers Guest Service Interface (disabled by default, as in Hyper-V).
 */
export async function checkCopyFile(p: CopyFileParams, vm: string, serviceEnabled: boolean): Promise<number> {
  if (p.FileSource.toLowerCase() !== 'host') throw invalid('FileSource', `'${p.FileSource}' is not supported: files can only be copied from the host to the guest (-FileSource Host)`, vm);
  const dest = p.DestinationPath;
  if (!dest.startsWith('/')) throw invalid('DestinationPath', `'${dest}' is not an absolute guest path (it must start with /)`, vm);
  if (dest.endsWith('/')) throw invalid('DestinationPath', `'${dest}' names a directory; give the full path of the file to create`, vm);
  if (dest.includes('\0')) throw invalid('DestinationPath', 'contains a NUL character', vm);
  if (!serviceEnabled) {
    throw new VmhostError('INTEGRATION_SERVICE_DISABLED',
      `The '${GUEST_SERVICE}' integration service is disabled for VM '${vm}'; enable it with: Enable-VMIntegrationService -VMName '${vm}' -Name '${GUEST_SERVICE}'`,
      { vm, service: GUEST_SERVICE });
  }
  if (!isAbsolute(p.SourcePath)) throw invalid('SourcePath', `'${p.SourcePath}' is not an absolute path on the host`, vm);
  const st = await stat(p.SourcePath).catch((e: NodeJS.ErrnoException) => {
    throw invalid('SourcePath', e.code === 'ENOENT' ? `'${p.SourcePath}' does not exist on the host` : `cannot read '${p.SourcePath}': ${e.message}`, vm);
  });
  if (!st.isFile()) throw invalid('SourcePath', `'${p.SourcePath}' is not a regular file`, vm);
  return st.size;
}

/** Runs the copy as the body of a job, reporting progress by bytes acknowledged by the guest. */
export async function copyToGuest(rt: VmRuntime, p: CopyFileParams, vm: { id: string; name: string }, size: number, h: JobHandle): Promise<CopyFileResult> {
  const t0 = Date.now();
  const mb = (n: number) => (n / 1048576).toFixed(1);
  h.progress(0, `Copying ${mb(size)} MB to ${p.DestinationPath}`);
  try {
    await rt.copyFile(p.SourcePath, p.DestinationPath, {
      createFullPath: p.CreateFullPath ?? false,
      overwrite: p.Force ?? false,
      onProgress: (done, total) => h.progress(total > 0 ? (100 * done) / total : 100, `Copied ${mb(done)} of ${mb(total)} MB`),
    });
  } catch (e) {
    throw guestRefusal(e, p, vm.name);
  }
  return { VMName: vm.name, VMId: vm.id, SourcePath: p.SourcePath, DestinationPath: p.DestinationPath, Size: size, ElapsedMilliseconds: Date.now() - t0 };
}

/** The agent's writefile codes (PROTOCOL.md) as errors an admin can act on; others pass unchanged. */
function guestRefusal(e: unknown, p: CopyFileParams, vm: string): unknown {
  if (!isVmhostError(e, 'AGENT_ERROR')) return e;
  const agentCode = e.context.agentCode;
  const detail = e.message.replace(/^agent: [A-Z_]+: /, '');
  const context = { vm, param: 'DestinationPath', path: p.DestinationPath };
  if (agentCode === 'FILE_EXISTS') {
    return new VmhostError('GUEST_FILE_EXISTS', `DestinationPath: ${detail} in the guest; use -Force to replace it`, context, { cause: e });
  }
  if (agentCode === 'NO_DIRECTORY') {
    return new VmhostError('GUEST_DIRECTORY_NOT_FOUND', `DestinationPath: ${detail} in the guest; use -CreateFullPath to create it`, context, { cause: e });
  }
  if (agentCode === 'IO_ERROR') return new VmhostError('GUEST_IO_ERROR', `The guest could not write ${p.DestinationPath}: ${detail}`, context, { cause: e });
  return e;
}
