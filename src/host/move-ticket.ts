// Per-move tickets: how a source host is let into a destination without ever holding the
// destination's token (nor sending its own). A caller holding the destination's credential asks
// it for a ticket for one VM id; the source presents it once, to prepare that VM's move. The
// book keeps only a hash of each ticket; tickets expire after TICKET_TTL_MS and are gone once
// used. Pure (the clock is passed in).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { VmhostError } from '../common/index.ts';

export const TICKET_TTL_MS = 60_000;

interface Entry { hash: Buffer; vmId: string; expiresAtMs: number }

export interface IssuedTicket { Ticket: string; VMId: string; ExpiresAt: string }

const hash = (t: string): Buffer => createHash('sha256').update(t).digest();

export class TicketBook {
  private entries: Entry[] = [];

  issue(vmId: string, nowMs: number): IssuedTicket {
    this.prune(nowMs);
    const ticket = randomBytes(32).toString('base64url');
    const expiresAtMs = nowMs + TICKET_TTL_MS;
    this.entries.push({ hash: hash(ticket), vmId, expiresAtMs });
    return { Ticket: ticket, VMId: vmId, ExpiresAt: new Date(expiresAtMs).toISOString() };
  }

  /** Use a ticket for `vmId`: valid once, before it expires, for that VM only. Throws MIGRATION_TICKET_INVALID. */
  redeem(ticket: string, vmId: string, nowMs: number): void {
    this.prune(nowMs);
    const h = hash(ticket);
    const i = this.entries.findIndex((e) => timingSafeEqual(e.hash, h));
    if (i < 0) throw new VmhostError('MIGRATION_TICKET_INVALID', 'the migration ticket is unknown, already used or expired: ask the destination for a new one', { vm: vmId });
    const e = this.entries[i]!;
    this.entries.splice(i, 1);
    if (e.vmId !== vmId) throw new VmhostError('MIGRATION_TICKET_INVALID', `the migration ticket was issued for VM ${e.vmId}, not ${vmId}`, { vm: vmId });
  }

  private prune(nowMs: number): void {
    this.entries = this.entries.filter((e) => e.expiresAtMs > nowMs);
  }
}
