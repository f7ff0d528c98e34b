import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TICKET_TTL_MS, TicketBook } from './move-ticket.ts';

const VM = '11111111-2222-3333-4444-555555555555';
const OTHER = '99999999-2222-3333-4444-555555555555';

test('a ticket is good once, for its VM, before it expires', () => {
  const book = new TicketBook();
  const t = book.issue(VM, 1000);
  assert.equal(t.VMId, VM);
  assert.equal(t.ExpiresAt, new Date(1000 + TICKET_TTL_MS).toISOString());
  book.redeem(t.Ticket, VM, 2000);
  assert.throws(() => book.redeem(t.Ticket, VM, 2000), /unknown, already used or expired/);
});

test('a ticket for another VM is refused, and used up by the attempt', () => {
  const book = new TicketBook();
  const t = book.issue(VM, 0);
  assert.throws(() => book.redeem(t.Ticket, OTHER, 1), /issued for VM 1111.*not 9999/);
  assert.throws(() => book.redeem(t.Ticket, VM, 1), /already used/);
});

test('an expired or made-up ticket is refused; tickets are distinct', () => {
  const book = new TicketBook();
  const a = book.issue(VM, 0);
  const b = book.issue(VM, 0);
  assert.notEqual(a.Ticket, b.Ticket);
  assert.throws(() => book.redeem('x'.repeat(43), VM, 1), /unknown/);
  book.redeem(b.Ticket, VM, TICKET_TTL_MS - 1);
  assert.throws(() => book.redeem(a.Ticket, VM, TICKET_TTL_MS), (e: Error & { code?: string }) => e.code === 'MIGRATION_TICKET_INVALID');
});
