// Move-VM from the web console: the browser cannot ask the destination daemon for a ticket
// itself (another origin), so the user's credential for the destination is handed to this host
// for that one request — CredSSP's delegation, in Hyper-V's terms. It is used at once to get the
// single-use ticket (move-ticket.ts) and never stored or logged; the move then runs on the
// ticket as one the CLI fetched would. The CLI keeps asking the destination itself.
import { isErrorCode, VmhostError } from '../common/index.ts';
import { httpDestination } from './move-destination.ts';
import type { IssuedTicket } from './move-ticket.ts';

const TICKET_TIMEOUT_MS = 30_000;

/** A ticket for moving VM `vmId` to `destination` (HOST:PORT), asked for with the caller's credential there. */
export async function delegatedTicket(destination: string, credential: string, vmId: string): Promise<string> {
  // Refuses a destination a move could not reach (not loopback: the prepare is not over HTTPS yet) before the credential goes anywhere.
  httpDestination(destination, '');
  let res: Response;
  try {
    res = await fetch(`http://${destination}/api/v1/migrations/tickets`, {
      method: 'POST', headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ VMId: vmId }), signal: AbortSignal.timeout(TICKET_TIMEOUT_MS),
    });
  } catch (e) {
    throw new VmhostError('MIGRATION_DESTINATION_UNREACHABLE', `the destination host ${destination} cannot be reached: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`, { host: destination }, { cause: e });
  }
  const json = await res.json().catch(() => null) as (IssuedTicket & { code?: string; message?: string }) | null;
  if (res.status === 401 || res.status === 403) {
    throw new VmhostError('MIGRATION_CREDENTIAL_REFUSED', `the destination host ${destination} refused the credential: give an Administrator's token of that host`, { host: destination, status: res.status });
  }
  if (!res.ok || json === null || typeof json.Ticket !== 'string') {
    const code = json?.code !== undefined && isErrorCode(json.code) ? json.code : 'MIGRATION_FAILED';
    throw new VmhostError(code, `destination ${destination}: ${json?.message ?? `HTTP ${res.status}`}`, { host: destination, status: res.status });
  }
  return json.Ticket;
}
