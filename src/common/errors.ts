// The one error type every module throws. Its `code` is a key of the one error table
// (error-codes.ts), which gives it an HTTP status, a CLI exit code and an NBD errno; `context`
// names what was being done (op, path, offset, vm …) so a message can be read without a stack trace.
import type { ErrorCode } from './error-codes.ts';

export type ErrorContext = Record<string, string | number | boolean | undefined>;

export class VmhostError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VmhostError';
    this.code = code;
    this.context = context;
  }
}

export function isVmhostError(e: unknown, code?: ErrorCode): e is VmhostError {
  return e instanceof VmhostError && (code === undefined || e.code === code);
}
