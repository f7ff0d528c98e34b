// The stable error codes thrown by src/qemu (all as VmhostError from src/common).
// Depends on common (the one error table).
import type { ErrorCode } from '../common/index.ts';

export const QemuErrorCode = {
  /** QEMU answered a QMP command with an error; context carries `qmpClass` and `command`. */
  QMP_ERROR: 'QMP_ERROR',
  /** No answer within the per-command timeout. */
  QMP_TIMEOUT: 'QMP_TIMEOUT',
  /** The QMP connection closed (QEMU exited or the client was closed) with the command pending. */
  QMP_DISCONNECTED: 'QMP_DISCONNECTED',
  /** Could not connect / bad greeting / capabilities negotiation failed. */
  QMP_CONNECT_FAILED: 'QMP_CONNECT_FAILED',
  /** The VM hardware description cannot be turned into a QEMU command line. */
  QEMU_SPEC_INVALID: 'QEMU_SPEC_INVALID',
  /** QEMU could not be started or exited before its QMP socket came up. */
  QEMU_START_FAILED: 'QEMU_START_FAILED',
  /** A pid to re-attach to is dead or is not the QEMU of this VM. */
  QEMU_ATTACH_FAILED: 'QEMU_ATTACH_FAILED',
  /** A host prerequisite (qemu binary, OVMF firmware) is missing. */
  QEMU_HOST_MISSING: 'QEMU_HOST_MISSING',
  /** Saving or restoring VM state failed. */
  QEMU_STATE_FAILED: 'QEMU_STATE_FAILED',
} as const satisfies Record<string, ErrorCode>;

export type QemuErrorCode = (typeof QemuErrorCode)[keyof typeof QemuErrorCode];
