// Move-VM from the web console: the browser cannot ask the destination daemon for a ticket
// itself (another origin), so the user's credential for the destination is handed to this host
// for that one request — CredSSP's delegation, in Hyper-V's terms. It is used at once to get the
// single-use ticket (move-ticket.ts), over HTTPS to the destination's pinned certificate like
// every call of a move, and never stored or logged; the move then runs on the ticket as one the
// CLI fetched would. The CLI keeps asking the destination itself.
import { VmhostError } from '../common/index.ts';
import { daemonCall, type DestinationTrust } from './move-destination.ts';
import type { IssuedTicket } from './move-ticket.ts';

/** A ticket for moving VM `vmId` to `destination` (HOST:PORT), asked for with the caller's credential there. */
export async function delegatedTicket(destination: string, credential: string, vmId: string, trust: DestinationTrust): Promise<string> {
  let issued: IssuedTicket | null;
  try {
    issued = await daemonCall(destination, trust)<IssuedTicket | null>('POST', '/migrations/tickets', { authorization: `Bearer ${credential}` }, { VMId: vmId });
  } catch (e) {
    const status = e instanceof VmhostError ? e.context.status : undefined;
    if (status === 401 || status === 403) {
      throw new VmhostError('MIGRATION_CREDENTIAL_REFUSED', `the destination host ${destination} refused the credential: give an Administrator's token of that host`, { host: destination, status }, { cause: e });
    }
    throw e;
  }
  if (typeof issued?.Ticket !== 'string') throw new VmhostError('MIGRATION_FAILED', `destination ${destination}: its ticket answer has no Ticket`, { host: destination });
  return issued.Ticket;
}
