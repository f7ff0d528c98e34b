// Normalized I/O, as Hyper-V storage QoS and metering count it: each 8 KiB of a request, or
// part of it, is one I/O. Data-less requests (flush, trim, write-zeroes, block status) cost
// one I/O when they are throttled, and none for the bytes counters.
import type { IoRequest } from './pipeline.ts';

export const NORMALIZED_IO_BYTES = 8192;

export function normalizedIos(req: IoRequest): number {
  switch (req.kind) {
    case 'read':
    case 'write':
      return Math.max(1, Math.ceil(req.length / NORMALIZED_IO_BYTES));
    case 'trim':
    case 'write-zeroes':
      return 1;
    case 'flush':
    case 'block-status':
      return 0;
  }
}
