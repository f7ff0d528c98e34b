// One recovery point onto the wire: `begin` (the drives' shapes, the VM's config for an initial
// copy, the point's type), a `data` frame per extent piece of each drive's changed blocks —
// zlib-deflated when the relationship compresses, a zero extent without payload — then `end`,
// and the receiver's `ack` once the point is durable. What sends it does not matter: the
// primary's cycle (a consistent point of the running VM), an extended replication's cycle (the
// blocks a Replica server's points changed), an initial copy written to media (a file).
import { deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import type { VirtualDisk } from '../blockio/index.ts';
import { TRACKING_BLOCK, type TakenChanges } from '../storage/index.ts';
import type { PointConsistency } from './app-consistent.ts';
import { PIECE, nonZeroUnits, type Frame } from './wire.ts';
import type { ShipmentTrace } from './shipment-trace.ts';

const deflate = promisify(deflateRaw);

/** Where frames go: a Replica server's connection, or a file on media. */
export interface FrameSink {
  send(f: Frame, payload?: Uint8Array): Promise<void>;
  expect(type: 'ack'): Promise<Extract<Frame, { t: 'ack' }>>;
}

export interface OutgoingDrive {
  id: string;
  fileName: string;
  /** The blocks to send (the disk's data ranges when `full`). */
  taken: Pick<TakenChanges, 'extents' | 'full' | 'bytes'>;
  /** The point's blocks (read only inside `taken.extents`). */
  copy: VirtualDisk;
  logicalSectorSize: number;
  physicalSectorSize: number;
}

export interface OutgoingPoint {
  at: Date;
  drives: OutgoingDrive[];
  consistency: PointConsistency;
  /** The VM's configuration: an initial copy carries it. */
  config?: unknown;
}

/** Send the point; bytes are changed bytes before compression, wire what crossed. */
export async function sendPoint(sink: FrameSink, p: OutgoingPoint, o: { recoveryHistory: number; compress: boolean; append?: boolean; base?: string },
  progress: (pct: number, what: string) => void = () => undefined, trace?: ShipmentTrace): Promise<{ bytes: number; wire: number; points: number; seq: number }> {
  const compression = o.compress ? 'deflate' : 'none';
  const initial = p.config !== undefined;
  await sink.send({
    t: 'begin', kind: initial ? 'initial' : 'delta', time: p.at.toISOString(), recoveryHistory: o.recoveryHistory, compression,
    drives: p.drives.map((d) => ({ id: d.id, virtualSize: d.copy.virtualSize, logicalSectorSize: d.logicalSectorSize, physicalSectorSize: d.physicalSectorSize, fileName: d.fileName })),
    ...(p.config ? { config: p.config } : {}), ...p.consistency, ...(o.append ? { append: true } : {}), ...(o.base ? { base: o.base } : {}),
  });
  const total = p.drives.reduce((a, d) => a + d.taken.bytes, 0);
  let bytes = 0, wire = 0;
  for (const d of p.drives) {
    for (const e of d.taken.extents) {
      // An initial copy lists the whole disk: what reads as zeros there is not sent (the base is a new, empty disk).
      // A full take in a cycle (the tracker lost track) sends its zeros too: the replica's blocks there may not be.
      for (const x of await d.copy.blockStatus(e.offset, e.length)) {
        if (x.zero && initial) continue;
        for (let off = 0; off < x.length; off += PIECE) {
          const length = Math.min(PIECE, x.length - off);
          if (x.zero) {
            await sink.send({ t: 'data', drive: d.id, offset: x.offset + off, length, zero: true, bytes: 0 });
            continue;
          }
          const raw = new Uint8Array(length);
          await d.copy.read(raw, x.offset + off);
          // An initial copy skips the zero blocks inside allocated ranges too (a VHDX allocates 1 MiB or more for one
          // 4 KiB write): the base starts empty. A changed block that now reads zero must be sent.
          for (const [at, n] of initial ? nonZeroUnits(raw, TRACKING_BLOCK) : [[0, length] as const]) {
            const piece = raw.subarray(at, at + n);
            const body = compression === 'deflate' ? await deflate(piece, { level: 1 }) : piece;
            await sink.send({ t: 'data', drive: d.id, offset: x.offset + off + at, length: n, zero: false, bytes: body.length }, body);
            bytes += n;
            wire += body.length;
          }
        }
      }
      progress(35 + (total > 0 ? (bytes / total) * 60 : 60), 'Sending the changed blocks');
    }
  }
  await sink.send({ t: 'end' });
  trace?.mark('send');
  const ack = await sink.expect('ack');
  trace?.mark('ack');
  return { bytes, wire, points: ack.points, seq: ack.seq };
}
