// Export-VM of a running VM: the leaves its block-server exports write to are copied by the
// block server's point-in-time copy (storage/point-in-time.ts: copy-before-write, every disk of
// the VM at one moment, the guest held only while the copy stages go in). A leaf over frozen
// checkpoint files copies only its own ranges into a differencing child of the parent's copy
// (the parents are copied as files); a base leaf is copied whole into a new dynamic disk of its
// format. The result is crash-consistent, as after a power cut at that moment: it imports Off.
import { open } from 'node:fs/promises';
import { chainFiles, createDiskFile, createDifferencingFile, openDiskFile, type BlockServer } from '../storage/index.ts';
import type { VirtualDisk } from '../blockio/index.ts';
import type { JobHandle } from './jobs.ts';
import type { ExportSource } from './vm-export.ts';

/** The live part of an export of the VM whose drives are served as `exportNames`. */
export function liveLeafCopy(server: BlockServer, exportNames: readonly string[]): NonNullable<ExportSource['live']> {
  const served = exportNames.map((n) => server.get(n)).filter((s) => s !== undefined);
  return {
    leaves: new Set(served.map((s) => chainFiles(s.disk)[0]!)),
    async copyLeaves(target, h: JobHandle) {
      const opened: VirtualDisk[] = [];
      try {
        const parts = [];
        for (const s of served) {
          const chain = chainFiles(s.disk);
          const to = target(chain[0]!);
          const d = s.disk;
          if (chain.length > 1) await createDifferencingFile(to, target(chain[1]!), { format: d.format === 'VHD' ? 'VHD' : 'VHDX' });
          else if (d.format === 'RAW') await sparseRaw(to, d.virtualSize);
          else {
            await createDiskFile(to, {
              format: d.format === 'VHD' ? 'VHD' : 'VHDX', type: 'Dynamic', size: d.virtualSize,
              ...(d.format === 'VHDX' ? { logicalSectorSize: d.logicalSectorSize as 512 | 4096, physicalSectorSize: d.physicalSectorSize as 512 | 4096 } : {}),
            });
          }
          const disk = await openDiskFile(to);
          opened.push(disk);
          parts.push({ exportName: s.exportName, target: disk, ranges: chain.length > 1 ? 'own' as const : 'all' as const });
        }
        const copy = await server.startPointInTimeCopy(parts);
        const timer = setInterval(() => {
          const p = copy.progress();
          if (p.totalBytes > 0) h.progress(10 + (p.copiedBytes / p.totalBytes) * 75, 'Copying the running VM\'s disks at one point in time');
        }, 500);
        try {
          await copy.done;
        } finally {
          clearInterval(timer);
        }
      } finally {
        for (const d of opened) await d.close();
      }
    },
  };
}

/** A new raw file of `size` bytes, all hole. */
async function sparseRaw(path: string, size: number): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}
