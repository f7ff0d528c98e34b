// What the kernel says about a host network interface: whether it exists, whether it has
// carrier, and its addresses (the admin's own, e.g. `ip addr add` on a host vNIC). Read with
// `ip -j addr show dev X` because Node's os.networkInterfaces() omits interfaces without
// carrier, and an address on a host vNIC whose relay is down still exists.
import { execFile } from 'node:child_process';

export interface LinkInfo { readonly carrier: boolean; readonly addresses: string[] }

interface IpAddrJson { flags?: string[]; addr_info?: { local?: string }[] }

/** null when the interface does not exist (or `ip` cannot tell). */
export function linkInfo(ifname: string): Promise<LinkInfo | null> {
  return new Promise((ok) => {
    execFile('ip', ['-j', 'addr', 'show', 'dev', ifname], { timeout: 5_000 }, (err, stdout) => {
      if (err) { ok(null); return; }
      try {
        const [link] = JSON.parse(stdout) as IpAddrJson[];
        if (!link) { ok(null); return; }
        ok({ carrier: link.flags?.includes('LOWER_UP') ?? false, addresses: (link.addr_info ?? []).flatMap((a) => (a.local ? [a.local] : [])) });
      } catch {
        ok(null);
      }
    });
  });
}
