// VM monitoring (Add-ClusterVMMonitoredItem -Service): the owner of a role asks the guest agent,
// every MONITOR_INTERVAL_MS, whether each monitored service runs — a systemd unit when the guest
// runs systemd and knows the unit, else a process of that name — with one `exec` per VM.
// A service counts as failed when it was seen running since this node last (re)started the VM
// and is not running now: as Hyper-V reacts to a service's failure, not to one that never started
// (a guest still booting, a service started by hand later). An agent that does not answer is no
// verdict for a service. Heartbeat monitoring (the VM resource's CheckHeartbeat, default 1) is the
// other check of each pass, for every role here: the VM's Heartbeat integration service judged by
// heartbeat-policy.ts — no OK within the grace after a start (a guest whose agent answered before),
// or an OK heartbeat lost past the timeout, is a failure. Recovery follows the VM resource's
// restart policy, one count for both checks, Hyper-V's defaults: the first failure within
// RESTART_PERIOD_MS restarts the VM in place (a reset: the guest reboots); the next one within the
// period fails the role over to another node (ClusterNode.requestFailover), where it starts cold
// with its failures forgotten.
import type { Host } from '../host/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { EtcdCompare } from './etcd-client.ts';
import { judgeHeartbeat, type HeartbeatTiming, type HeartbeatTrack } from './heartbeat-policy.ts';
import { MONITOR_PREFIX, monitorKey, type MonitorRecord } from './ops-keys.ts';

export const MONITOR_INTERVAL_MS = 2_000;
/** Hyper-V's VM resource: RestartThreshold 1 within RestartPeriod 15 min, then fail over. */
export const RESTART_THRESHOLD = 1;
export const RESTART_PERIOD_MS = 15 * 60_000;
const CHECK_TIMEOUT_MS = 10_000;

/** A role's record as the pass read it; absent: modRevision 0 (a write must find it still absent). */
interface RecordAt { rec: MonitorRecord; modRevision: number }

/** A role with no record yet: nothing monitored, no failures (its key absent). */
const noRecord = (vmId: string): RecordAt => ({ rec: { VMId: vmId, Items: [], Failures: [] }, modRevision: 0 });

/** The compare that lets a write through only if the record is still as it was read (or still absent). */
const unchanged = (vmId: string, modRevision: number): EtcdCompare =>
  modRevision === 0 ? { key: monitorKey(vmId), absent: true } : { key: monitorKey(vmId), modRevision };

/** What failed, for the events: a monitored service (CLUSTER_VM_MONITOR_*) or the heartbeat (CLUSTER_VM_HEARTBEAT_*). */
type FailureKind = 'MONITOR' | 'HEARTBEAT';

/** The restart policy's decision for a failure at `now`: the failures kept, and whether the role fails over. */
export function restartDecision(failures: readonly number[], now: number): { failures: number[]; failOver: boolean } {
  const kept = [...failures.filter((t) => now - t < RESTART_PERIOD_MS), now];
  return { failures: kept, failOver: kept.length > RESTART_THRESHOLD };
}

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
  /** Per VM here: its heartbeat as last judged in its current boot. */
  private readonly tracks = new Map<string, HeartbeatTrack>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly node: ClusterNode, private readonly host: Host, private readonly timing: HeartbeatTiming) {}

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
    for (const id of this.tracks.keys()) if (!here.has(id)) this.tracks.delete(id);
    const { kvs } = await this.node.etcd.range(MONITOR_PREFIX);
    const records = new Map<string, RecordAt>(kvs.map((kv) => {
      const rec = JSON.parse(kv.value) as MonitorRecord;
      return [rec.VMId, { rec, modRevision: kv.modRevision }];
    }));
    for (const vm of here.values()) {
      if (this.restarting.has(vm.id)) continue;
      const at = records.get(vm.id) ?? noRecord(vm.id);
      if (await this.checkHeartbeat(vm, at)) continue;
      if (vm.state === 'Running' && at.rec.Items.length > 0) await this.checkServices(vm, at);
    }
  }

  /** One heartbeat sample of a VM here, judged; answers whether it acted on a failure. */
  private async checkHeartbeat(vm: { id: string; name: string; state: string; boot?: string }, at: RecordAt): Promise<boolean> {
    if (at.rec.CheckHeartbeat === 0 || vm.boot === undefined || (vm.state !== 'Running' && vm.state !== 'Paused')) {
      this.tracks.delete(vm.id);
      return false;
    }
    // Every boot (a start, a reboot from inside, a reset) has its own grace: judged per boot.
    const { track, verdict } = judgeHeartbeat(this.tracks.get(vm.id), { now: Date.now(), run: vm.boot, status: this.host.get(vm.id).Heartbeat, agentSeen: at.rec.AgentSeen === true }, this.timing);
    this.tracks.set(vm.id, track);
    const s = (ms: number): string => `${Math.round(ms / 1000)} s`;
    switch (verdict.kind) {
      case 'ok':
        if (verdict.firstForRole) await this.recordAgentSeen(vm.id, at);
        return false;
      case 'no-agent':
        this.node.event('Information', 'CLUSTER_VM_HEARTBEAT_NOT_WATCHED', `VM '${vm.name}' reported no heartbeat ${s(verdict.afterMs)} after its start and never has in this role: taken for a guest without the agent, it is not restarted for it`);
        return false;
      case 'never':
        await this.recover(vm, at, 'HEARTBEAT', `VM '${vm.name}' reported no heartbeat ${s(verdict.afterMs)} after its start (grace ${s(this.timing.graceMs)})`);
        return true;
      case 'lost':
        await this.recover(vm, at, 'HEARTBEAT', `heartbeat of VM '${vm.name}' lost for ${s(verdict.afterMs)} (timeout ${s(this.timing.lostMs)})`);
        return true;
      default:
        return false;
    }
  }

  /** The role's guest answered once: from now on a start it never answers after is a failure. */
  private async recordAgentSeen(vmId: string, at: RecordAt): Promise<void> {
    for (let { rec, modRevision } = at, tries = 0; tries < 3; tries++) {
      if ((await this.node.etcd.txn([unchanged(vmId, modRevision)], [{ put: monitorKey(vmId), value: JSON.stringify({ ...rec, AgentSeen: true } satisfies MonitorRecord) }])).succeeded) return;
      const kv = await this.node.etcd.get(monitorKey(vmId));
      ({ rec, modRevision } = kv ? { rec: JSON.parse(kv.value) as MonitorRecord, modRevision: kv.modRevision } : noRecord(vmId));
    }
  }

  private async checkServices(vm: { id: string; name: string }, at: RecordAt): Promise<void> {
    const { rec } = at;
    let seen: Map<string, boolean>;
    try {
      const r = await this.host.invoke(vm.id, checkScript(rec.Items.map((i) => i.Service)), CHECK_TIMEOUT_MS);
      seen = parseCheck(r.stdout.toString());
    } catch {
      return; // the agent did not answer: no verdict
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
    if (failed.length > 0) await this.recover(vm, at, 'MONITOR', `monitored service ${failed.join(', ')} stopped in VM '${vm.name}'`);
  }

  private async recover(vm: { id: string; name: string }, at: RecordAt, kind: FailureKind, what: string): Promise<void> {
    const { rec, modRevision } = at;
    const { failures, failOver } = restartDecision(rec.Failures, Date.now());
    for (const k of this.armed) if (k.startsWith(`${vm.id}/`)) this.armed.delete(k);
    // The record changes only if nobody else did meanwhile (Remove-ClusterVMMonitoredItem, CheckHeartbeat set to 0): then no recovery either.
    const r = await this.node.etcd.txn([unchanged(vm.id, modRevision)], [{ put: monitorKey(vm.id), value: JSON.stringify({ ...rec, Failures: failOver ? [] : failures } satisfies MonitorRecord) }]);
    if (!r.succeeded) return;
    if (failOver) {
      this.node.event('Warning', `CLUSTER_VM_${kind}_FAILOVER`, `${what}: failure ${failures.length} within ${RESTART_PERIOD_MS / 60_000} min, past the restart threshold (${RESTART_THRESHOLD}): the role fails over`);
      this.node.requestFailover(vm.id, what);
      return;
    }
    this.node.event('Warning', `CLUSTER_VM_${kind}_RESTART`, `${what}: restarting the VM on ${this.node.name} (failure ${failures.length} of ${RESTART_THRESHOLD} before a failover)`);
    this.restarting.add(vm.id);
    try {
      await this.host.restart(vm.id).result;
    } catch (e) {
      this.node.event('Error', `CLUSTER_VM_${kind}_RESTART_FAILED`, `VM '${vm.name}' could not be restarted: ${(e as Error).message}: the role fails over`);
      this.node.requestFailover(vm.id, `${what}, and its restart failed`);
    } finally {
      this.restarting.delete(vm.id);
    }
  }
}
