// Where a host is reached: the defaults shared by the daemon and the CLI.
import { resolve } from 'node:path';
import { VmhostError } from '../common/index.ts';

// In a checkout the default host lives in <checkout>/var/host1, wherever the command runs from.
export const DEFAULT_DATA_DIR = process.env.VMHOST_DATA_DIR ?? resolve(import.meta.dirname, '../../var/host1');
export const DEFAULT_LISTEN = '127.0.0.1:8470';

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new VmhostError('INVALID_ARGUMENT', `'${text}' is not HOST:PORT (e.g. 127.0.0.1:8470)`, { param: 'listen' });
  }
  return { host: m[1] ?? m[2]!, port };
}

/** Loopback listeners stay plain HTTP; every other address needs --allow-remote and gets TLS. */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}
