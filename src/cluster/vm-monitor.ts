// VM monitoring (Add-ClusterVMMonitoredItem -Service): the owner of a role asks the guest agent,
// every MONITOR_INTERVAL_MS, whether each monitored service runs — a systemd unit when the guest
// runs systemd and knows the unit, else a process of that name — with one `exec` per VM.
// A service counts as failed when it was seen running since this node last (re)started the VM
// and is not running now: as Hyper-V reacts to a service's failure, not to one that never started
// (a guest still booting, a service started by hand later). An agent that does not answer is no
// verdict (the heartbeat is another matter). Recovery follows the VM resource's restart policy,
// Hyper-V's defaults: the first failure within RESTART_PERIOD_MS restarts the VM in place (a
// reset: the guest reboots); the next one within the period fails the role over to another node
// (ClusterNode.requestFailover), where it starts cold with its failures forgotten.
import type { Host } from '../host/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { MONITOR_PREFIX, monitorKey, type MonitorRecord } from './ops-keys.ts';

export const MONITOR_INTERVAL_MS = 2_000;
/** Hyper-V's VM resource: RestartThreshold 1 within RestartPeriod 15 min, then fail over. */
export const RESTART_THRESHOLD = 1;
export const RESTART_PERIOD_MS = 15 * 60_000;
const CHECK_TIMEOUT_MS = 10_000;

/** The guest-side check: one line `<service> <exit code>` per item; 0 = running. Names are checked by the API's schema (no quotes). */
export function checkScript(services: readonly string[]): string {
  const check = [
    'check() {',
    '  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl cat "$1" >/dev/null 2>&1; then systemctl is-active --quiet "$1"; return $?; fi',
    '  pidof "$1" >/dev/null 2>&1',
    '}',
  ];
  return [...check, ...services.map((s) => `check '${s}'; echo "${s} $?"`)].join('\n') + '\n';
}

/** The script's answer: service → running; a service it did not report is no verdict. */
export function parseCheck(stdout: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (\d+)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2] === '0');
  }
  return out;
}

export class VmMonitor {
  /** `vmId/service` seen running since this node last started (or restarted) the VM. */
  private readonly armed = new Set<string>();
  /** VMs this node is restarting: no verdict until the reset is done. */
  private readonly restarting = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly node: ClusterNode, private readonly host: Host) {}

  start(): void {
    this.timer = setInterval(() => { this.running ??= this.pass().catch(() => undefined).finally(() => { this.running = undefined; }); }, MONITOR_INTERVAL_MS);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async pass(): Promise<void> {
    const here = new Map(this.host.clusteredVms().map((v) => [v.id, v]));
    // A VM that left this node starts afresh wherever it goes (and here, should it come back).
    for (const k of this.armed) if (!here.has(k.slice(0, k.indexOf('/')))) this.armed.delete(k);
    const { kvs } = await this.node.etcd.range(MONITOR_PREFIX);
    for (const kv of kvs) {
      const rec = JSON.parse(kv.value) as MonitorRecord;
      const vm = here.get(rec.VMId);
      if (!vm || vm.state !== 'Running' || rec.Items.length === 0 || this.restarting.has(vm.id)) continue;
      let seen: Map<string, boolean>;
      try {
        const r = await this.host.invoke(vm.id, checkScript(rec.Items.map((i) => i.Service)), CHECK_TIMEOUT_MS);
        seen = parseCheck(r.stdout.toString());
      } catch {
        continue; // the agent did not answer: no verdict
      }
      const failed: string[] = [];
      for (const { Service } of rec.Items) {
        const k = `${vm.id}/${Service}`;
        const up = seen.get(Service);
        if (up === true && !this.armed.has(k)) {
          this.armed.add(k);
          this.host.events.emit({ Level: 'Information', Code: 'CLUSTER_VM_MONITOR_WATCHING', Message: `Monitored service ${Service} runs in the guest: its stop will restart the VM, or fail the role over`, VMId: vm.id, VMName: vm.name });
        }
        else if (up === false && this.armed.has(k)) failed.push(Service);
      }
      if (failed.length > 0) await this.recover(vm, rec, kv.modRevision, failed);
    }
  }

  private async recover(vm: { id: string; name: string }, rec: MonitorRecord, modRevision: number, failed: string[]): Promise<void> {
    const now = Date.now();
    const failures = [...rec.Failures.filter((t) => now - t < RESTART_PERIOD_MS), now];
    for (const k of this.armed) if (k.startsWith(`${vm.id}/`)) this.armed.delete(k);
    const what = `monitored service ${failed.join(', ')} stopped in VM '${vm.name}'`;
    const failOver = failures.length > RESTART_THRESHOLD;
    // The record changes only if nobody else did meanwhile (Remove-ClusterVMMonitoredItem): then no recovery either.
    const r = await this.node.etcd.txn([{ key: monitorKey(vm.id), modRevision }],
      [{ put: monitorKey(vm.id), value: JSON.stringify({ ...rec, Failures: failOver ? [] : failures } satisfies MonitorRecord) }]);
    if (!r.succeeded) return;
    if (failOver) {
      this.node.event('Warning', 'CLUSTER_VM_MONITOR_FAILOVER', `${what}: failure ${failures.length} within ${RESTART_PERIOD_MS / 60_000} min, past the restart threshold (${RESTART_THRESHOLD}): the role fails over`);
      this.node.requestFailover(vm.id, what);
      return;
    }
    this.node.event('Warning', 'CLUSTER_VM_MONITOR_RESTART', `${what}: the VM is restarted on ${this.node.name} (failure ${failures.length} of ${RESTART_THRESHOLD} before a failover)`);
    this.restarting.add(vm.id);
    try {
      await this.host.restart(vm.id).result;
    } catch (e) {
      this.node.event('Error', 'CLUSTER_VM_MONITOR_RESTART_FAILED', `VM '${vm.name}' could not be restarted: ${(e as Error).message}: the role fails over`);
      this.node.requestFailover(vm.id, `${what}, and its restart failed`);
    } finally {
      this.restarting.delete(vm.id);
    }
  }
}
