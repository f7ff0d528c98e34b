// -Vhds of Move-VM and Move-VMStorage: Hyper-V's hashtables as text, one per element,
// '@{SourceFilePath=C:\a.vhdx;DestinationFilePath=D:\a.vhdx}' (the @{} and quotes optional).
import { VmhostError } from '../../common/index.ts';

export interface VhdPair { SourceFilePath: string; DestinationFilePath: string }

/** One -Vhds element of `cmdlet`: its SourceFilePath and DestinationFilePath as written. */
export function parseVhdPair(text: string, cmdlet: string): VhdPair {
  const body = text.trim().replace(/^@\{/, '').replace(/\}$/, '');
  const fields = new Map<string, string>();
  for (const part of body.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^(['"])(.*)\1$/, '$2'));
  }
  const src = fields.get('sourcefilepath'), dst = fields.get('destinationfilepath');
  if (!src || !dst) {
    throw new VmhostError('CLI_INVALID_PARAMETER', `${cmdlet} -Vhds: '${text}' needs SourceFilePath and DestinationFilePath, as in @{SourceFilePath=/a/x.vhdx;DestinationFilePath=/b/x.vhdx}`, { param: 'Vhds' });
  }
  return { SourceFilePath: src, DestinationFilePath: dst };
}
