// The test guest's kernel has no 802.1Q built in: the modules (8021q and its dependencies)
// are taken from the cached Debian kernel package the image was built from, for tests that
// give a guest its own VLAN sub-interfaces (trunk ports) and insmod them through the agent.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The modules in load order, extracted under `outDir`; null if the kernel package is not cached. */
export function vlanModules(kernelPath: string, kernelVersion: string, outDir: string): { name: string; data: Buffer }[] | null {
  const debs = join(dirname(dirname(kernelPath)), 'debs');
  const deb = existsSync(debs) ? readdirSync(debs).find((f) => f.startsWith(`linux-image-${kernelVersion}_`) && f.endsWith('.deb')) : undefined;
  if (!deb) return null;
  mkdirSync(outDir, { recursive: true });
  const names = ['llc', 'stp', 'garp', 'mrp', '8021q'];
  const paths = ['net/llc/llc.ko', 'net/802/stp.ko', 'net/802/garp.ko', 'net/802/mrp.ko', 'net/8021q/8021q.ko'].map((p) => `./lib/modules/${kernelVersion}/kernel/${p}`);
  const r = spawnSync('sh', ['-c', 'deb=$1; out=$2; shift 2; dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out" "$@"', 'sh', join(debs, deb), outDir, ...paths]);
  if (r.status !== 0) return null;
  return names.map((name, i) => ({ name, data: readFileSync(join(outDir, paths[i]!)) }));
}

/** The shell lines that write each module into the guest's /tmp and insmod it. */
export function insmodScripts(mods: { name: string; data: Buffer }[]): string[] {
  return mods.map((m) => `base64 -d > /tmp/${m.name}.ko <<'EOF'\n${m.data.toString('base64')}\nEOF\ninsmod /tmp/${m.name}.ko`);
}
