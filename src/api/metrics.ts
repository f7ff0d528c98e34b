// The daemon's Prometheus metrics (GET /metrics, Viewer like every read route): per VM CPU time,
// memory assigned, disk bytes/operations/normalized I/Os and a latency histogram, NIC bytes,
// packets and drops by reason; switch counters; resource pools (members, and a metered pool's
// counts since its last reset, Measure-VMResourcePool's numbers by type); jobs; the daemon
// process (prom-client's default metrics). Values are read from the host at each scrape
// (host.metering.live(), host.pools), so nothing here counts on its own except finished jobs
// (since the first scrape). Names follow Prometheus conventions:
// vmhost_ prefix, base units (seconds, bytes), _total on counters; "received" and
// "transmitted" are the VM's own view of its NIC (what the guest's counters would say).
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { METERED_POOL_TYPES, type Host, type Job } from '../host/index.ts';
import { LATENCY_BUCKETS_MS, type DiskCounters } from '../storage/index.ts';

type Labels = Record<string, string>;
const MB = 1024 * 1024;

/**
 * A histogram whose buckets are already counted (the storage metering stage keeps them per
 * disk): prom-client's Histogram only takes observations, so this is a metric object of its
 * own shape, which the registry formats as it does any histogram.
 */
class CountedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private rows: { labels: Labels; buckets: number[]; sum: number; count: number }[] = [];
  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  set(rows: { labels: Labels; buckets: number[]; sum: number; count: number }[]): void {
    this.rows = rows;
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { metricName: string; labels: Labels; value: number }[] }> {
    const values = this.rows.flatMap((r) => [
      ...this.bounds.map((le, i) => ({ metricName: `${this.name}_bucket`, labels: { ...r.labels, le: String(le) }, value: r.buckets[i]! })),
      { metricName: `${this.name}_bucket`, labels: { ...r.labels, le: '+Inf' }, value: r.count },
      { metricName: `${this.name}_sum`, labels: r.labels, value: r.sum },
      { metricName: `${this.name}_count`, labels: r.labels, value: r.count },
    ]);
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }
}

export class DaemonMetrics {
  private readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly latency = new CountedHistogram('vmhost_vm_disk_latency_seconds', 'Latency of the disk\'s completed read and write requests through the block server', LATENCY_BUCKETS_MS.map((ms) => ms / 1000));
  private readonly jobsFinished: Counter;
  /** One scrape at a time: each one resets and refills the families. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: Host) {
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names with _total, which Prometheus reserves for counters (promtool rejects them).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    // A metric object of the registry's own shape (see CountedHistogram), not one of prom-client's classes.
    this.registry.registerMetric(this.latency as unknown as Metric);
    this.jobsFinished = new Counter({ name: 'vmhost_jobs_finished_total', help: 'Jobs that ended since the daemon\'s first scrape, by job name and final state', labelNames: ['job', 'state'], registers: [this.registry] });
    host.jobs.subscribe((j: Job) => { if (j.State !== 'Running') this.jobsFinished.inc({ job: j.Name, state: j.State }); });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    const next = this.queue.then(() => this.fill()).then(() => this.registry.metrics());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private counter(name: string, help: string, labelNames: string[]): Counter {
    let c = this.counters.get(name);
    if (!c) { c = new Counter({ name, help, labelNames, registers: [this.registry] }); this.counters.set(name, c); }
    return c;
  }

  private gauge(name: string, help: string, labelNames: string[]): Gauge {
    let g = this.gauges.get(name);
    if (!g) { g = new Gauge({ name, help, labelNames, registers: [this.registry] }); this.gauges.set(name, g); }
    return g;
  }

  private async fill(): Promise<void> {
    const live = await this.host.metering.live();
    const switches = this.host.network.registry.counters();
    for (const c of this.counters.values()) c.reset();
    for (const g of this.gauges.values()) g.reset();
    const count = (name: string, help: string, labels: Labels, v: number) => this.counter(name, help, Object.keys(labels)).inc(labels, v);
    const gauge = (name: string, help: string, labels: Labels, v: number) => this.gauge(name, help, Object.keys(labels)).set(labels, v);

    const byState = new Map<string, number>();
    const histogram: Parameters<CountedHistogram['set']>[0] = [];
    for (const x of live) {
      const vm = { vm: x.vm.config.name, vm_id: x.vm.config.id };
      byState.set(x.vm.state, (byState.get(x.vm.state) ?? 0) + 1);
      gauge('vmhost_vm_info', 'A VM on this host (always 1), with its state', { ...vm, state: x.vm.state }, 1);
      gauge('vmhost_vm_resource_metering_enabled', 'Whether resource metering (Enable-VMResourceMetering) counts for the VM', vm, this.host.metering.isEnabled(x.vm.config.id) ? 1 : 0);
      count('vmhost_vm_cpu_seconds_total', 'CPU time of the VM\'s virtual processors (the current QEMU process\'s vCPU threads)', vm, x.cpuSeconds);
      gauge('vmhost_vm_memory_assigned_bytes', 'Memory assigned to the running VM', vm, x.memoryAssignedBytes);
      const mem = this.host.memory.of(x.vm);
      if (mem && x.vm.config.dynamicMemory.enabled) {
        gauge('vmhost_vm_memory_demand_bytes', 'Memory the guest uses (Get-VM\'s MemoryDemand; dynamic memory only)', vm, mem.demandBytes);
        gauge('vmhost_vm_memory_smart_paging_bytes', 'Memory of the VM plugged from its smart paging file', vm, mem.pagingBytes);
      }
      for (const d of x.disks) {
        const labels = { ...vm, disk: d.drive.path };
        diskFamilies(d.counters, labels, count, gauge);
        histogram.push({ labels, buckets: d.counters.latencyBuckets, sum: d.counters.latencyMsSum / 1000, count: d.counters.latencyCount });
      }
      for (const n of x.nics) {
        const labels = { ...vm, adapter: n.name };
        count('vmhost_vm_network_received_bytes_total', 'Bytes the switch delivered to the VM\'s adapter', labels, n.port.txBytes);
        count('vmhost_vm_network_transmitted_bytes_total', 'Bytes the VM\'s adapter sent into the switch', labels, n.port.rxBytes);
        count('vmhost_vm_network_received_packets_total', 'Frames the switch delivered to the VM\'s adapter', labels, n.port.txFrames);
        count('vmhost_vm_network_transmitted_packets_total', 'Frames the VM\'s adapter sent into the switch', labels, n.port.rxFrames);
        for (const [reason, v] of Object.entries(n.port.drops)) {
          count('vmhost_vm_network_dropped_packets_total', 'Frames from or to the VM\'s adapter the switch dropped, by reason', { ...labels, reason }, v);
        }
      }
    }
    this.latency.set(histogram);
    for (const [state, n] of byState) gauge('vmhost_vms', 'VMs on this host by state', { state }, n);

    for (const s of switches) {
      const labels = { switch: s.name };
      count('vmhost_switch_received_bytes_total', 'Bytes the switch received from its ports', labels, s.stats.rxBytes);
      count('vmhost_switch_transmitted_bytes_total', 'Bytes the switch delivered to its ports', labels, s.stats.txBytes);
      count('vmhost_switch_received_packets_total', 'Frames the switch received from its ports', labels, s.stats.rxFrames);
      count('vmhost_switch_transmitted_packets_total', 'Frames the switch delivered to its ports', labels, s.stats.txFrames);
      gauge('vmhost_switch_mac_entries', 'Learned MAC addresses (all VLANs)', labels, s.stats.macEntries);
      gauge('vmhost_switch_ports', 'Ports of the switch', labels, Object.keys(s.stats.ports).length);
      for (const [reason, v] of Object.entries(s.stats.drops)) count('vmhost_switch_dropped_packets_total', 'Frames the switch dropped, by reason', { ...labels, reason }, v);
    }

    this.pools(count, gauge);

    const jobs = new Map<string, number>();
    for (const j of this.host.jobs.list()) jobs.set(j.State, (jobs.get(j.State) ?? 0) + 1);
    for (const state of ['Running', 'Completed', 'Failed']) gauge('vmhost_jobs', 'Jobs the daemon keeps (running, and the latest finished), by state', { state }, jobs.get(state) ?? 0);
  }

  /**
   * Each pool's members; a metered pool's counts by what its type meters (a Processor pool's CPU
   * time, a Memory pool's average memory, an Ethernet pool's traffic, a VHD pool's disk bytes and
   * allocation). The counts start over at Reset-VMResourceMetering: Prometheus reads the drop as
   * a counter reset, as it does a restarted process's.
   */
  private pools(count: Family, gauge: Family): void {
    for (const p of this.host.pools.list()) {
      if (p.Name === 'Primordial') continue;
      const labels = { pool: p.Name, type: p.ResourcePoolType };
      gauge('vmhost_resource_pool_members', 'Members of the resource pool: VMs (Memory, Processor), drives (VHD) or network adapters (Ethernet)', labels, p.Members.length);
      if (!p.ResourceMeteringEnabled || !METERED_POOL_TYPES.some((t) => t === p.ResourcePoolType)) continue;
      const r = this.host.pools.measure(p.Name, [p.ResourcePoolType]);
      gauge('vmhost_resource_pool_metering_duration_seconds', 'Time the pool has been metered since its last reset', labels, r.MeteringDuration.TotalSeconds);
      switch (p.ResourcePoolType) {
        case 'Processor':
          count('vmhost_resource_pool_cpu_seconds_total', 'CPU time of the members\' virtual processors since the pool\'s last reset', labels, r.CpuSeconds);
          break;
        case 'Memory':
          gauge('vmhost_resource_pool_memory_average_bytes', 'The members\' average memory summed, since the pool\'s last reset (Measure-VMResourcePool\'s AverageMemoryUsage)', labels, r.AverageMemoryUsage * MB);
          break;
        case 'Ethernet':
          count('vmhost_resource_pool_network_received_bytes_total', 'Bytes the switch delivered to the member adapters since the pool\'s last reset', labels, r.NetworkInboundBytes);
          count('vmhost_resource_pool_network_transmitted_bytes_total', 'Bytes the member adapters sent into the switch since the pool\'s last reset', labels, r.NetworkOutboundBytes);
          break;
        case 'VHD':
          count('vmhost_resource_pool_disk_read_bytes_total', 'Bytes the members read from the member drives since the pool\'s last reset', labels, r.AggregatedDiskDataReadBytes);
          count('vmhost_resource_pool_disk_written_bytes_total', 'Bytes the members wrote to the member drives since the pool\'s last reset', labels, r.AggregatedDiskDataWrittenBytes);
          gauge('vmhost_resource_pool_disk_allocation_bytes', 'Host storage the member drives take at most since the pool\'s last reset (TotalDiskAllocation)', labels, r.TotalDiskAllocation * MB);
          break;
      }
    }
  }
}

type Family = (name: string, help: string, labels: Labels, v: number) => void;

function diskFamilies(c: DiskCounters, labels: Labels, count: Family, gauge: Family): void {
  count('vmhost_vm_disk_read_bytes_total', 'Bytes the VM read from the disk', labels, c.bytesRead);
  count('vmhost_vm_disk_written_bytes_total', 'Bytes the VM wrote to the disk', labels, c.bytesWritten);
  for (const [op, v] of Object.entries(c.operations)) count('vmhost_vm_disk_operations_total', 'Disk requests completed, by operation', { ...labels, operation: op }, v);
  count('vmhost_vm_disk_normalized_ios_total', 'Normalized I/Os (each 8 KiB or part of a read or write is one), as storage QoS counts them', labels, c.normalizedIos);
  gauge('vmhost_vm_disk_normalized_iops', 'Normalized I/Os per second over the last second', labels, c.normalizedIops);
  count('vmhost_vm_disk_errors_total', 'Disk requests that completed with an error', labels, c.errors);
  gauge('vmhost_vm_disk_requests_in_flight', 'Disk requests between the metering stage and the disk', labels, c.inFlight);
}
