// How one node of a cluster lets another move a clustered VM onto it live. Outside a cluster a
// source presents a ticket the destination issued to a caller holding its API token; inside one
// no node holds another's token: the nodes share the cluster's MoveKey (32 random bytes made by
// New-Cluster, kept in etcd's `config`: whoever can read the cluster's keys is a node already).
// A move is asked in etcd as `move/<vmId>` = {To, Id}; the owner presents the destination the
// ticket `cluster:<Id>.<HMAC-SHA256(MoveKey, vmId \n To \n Id)>`, which the destination accepts
// once, only while that move record is in etcd naming it, for that VM only. Pure.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { VmhostError } from '../common/index.ts';
import { CLUSTER_TICKET_PREFIX } from '../host/index.ts';

export function newMoveKey(): string {
  return randomBytes(32).toString('base64');
}

function mac(key: string, vmId: string, to: string, moveId: string): Buffer {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(`${vmId}\n${to}\n${moveId}`).digest();
}

/** The ticket the owner presents to node `to` for move `moveId` of VM `vmId`. */
export function clusterMoveTicket(key: string, vmId: string, to: string, moveId: string): string {
  return `${CLUSTER_TICKET_PREFIX}${moveId}.${mac(key, vmId, to, moveId).toString('base64url')}`;
}

/** The move id a ticket was made for, once its MAC is checked for (vmId, to); throws MIGRATION_TICKET_INVALID. */
export function checkClusterMoveTicket(key: string, ticket: string, vmId: string, to: string): string {
  const body = ticket.startsWith(CLUSTER_TICKET_PREFIX) ? ticket.slice(CLUSTER_TICKET_PREFIX.length) : '';
  const dot = body.lastIndexOf('.');
  const moveId = body.slice(0, dot);
  const given = Buffer.from(body.slice(dot + 1), 'base64url');
  const want = mac(key, vmId, to, moveId);
  if (dot <= 0 || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new VmhostError('MIGRATION_TICKET_INVALID', `the cluster move ticket for VM ${vmId} was not made with this cluster's key for node ${to}`, { vm: vmId });
  }
  return moveId;
}
