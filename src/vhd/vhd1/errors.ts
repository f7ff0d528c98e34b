// Error helpers of the legacy VHD engine: every failure leaves as a VmhostError whose
// context names the file, the on-disk structure and its byte offset, so a message is
// readable without a stack trace. Codes: VHD_CORRUPT, VHD_INVALID_ARGUMENT, VHD_TOO_LARGE,
// VHD_READ_ONLY, VHD_PARENT_MISMATCH, VHD_PARENT_MISSING, VHD_CHAIN_TOO_DEEP, VHD_CHAIN_CYCLE,
// VHD_UNSUPPORTED.
import { VmhostError, type ErrorContext } from '../../common/errors.ts';
import type { ErrorCode } from '../../common/error-codes.ts';

export function vhdError(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown): VmhostError {
  return new VmhostError(code, message, { format: 'VHD', ...context }, cause === undefined ? undefined : { cause });
}

export function corrupt(file: string, structure: string, offset: number, message: string): VmhostError {
  return vhdError('VHD_CORRUPT', `${file}: ${structure} at offset ${offset}: ${message}`, { path: file, structure, offset });
}

export function invalidArgument(message: string, context: ErrorContext = {}): VmhostError {
  return vhdError('VHD_INVALID_ARGUMENT', message, context);
}
