// Get-VMHost: the host's resources, what runs on it, and how (KVM or TCG).
import type { ReactNode } from 'react';
import type { HostView } from '../api.ts';
import { bytes } from '../format.ts';
import { useApi, useInterval, useLiveTick } from '../live.ts';
import { PageHeader, Progress } from './common.tsx';
import { MeteringGraphs } from './MeteringGraphs.tsx';

export function HostPanel() {
  const tick = useLiveTick();
  const every10 = useInterval(10_000);
  const { data: h, error } = useApi<HostView>('/host', [tick, every10]);
  if (error && !h) return <p className="error-text" role="alert">{error.message}</p>;
  if (!h) return <p className="muted" aria-busy="true">Loading…</p>;
  const used = h.MemoryCapacity - h.FreeMemory;
  return (
    <section aria-labelledby="host-title">
      <PageHeader title={<span id="host-title">Host {h.ComputerName}</span>} />
      <div className="tiles">
        <Tile label="Logical processors" value={String(h.LogicalProcessorCount)} sub={h.CpuModel} />
        <Tile label="Memory" value={bytes(h.MemoryCapacity)} sub={`${bytes(h.FreeMemory)} free`}>
          <Progress value={(used / h.MemoryCapacity) * 100} label="Memory in use" />
        </Tile>
        <Tile label="Virtual machines running" value={`${h.RunningVirtualMachineCount} / ${h.VirtualMachineCount}`} sub="running / on this host" />
        <Tile label="Accelerator" value={h.Accelerator} sub={h.Accelerator === 'KVM' ? 'Hardware virtualization' : 'Software emulation (TCG): no usable KVM on this host'} />
        <Tile label="vmhost version" value={h.Version} sub={`QEMU ${h.QemuVersion}`} />
      </div>
      <div className="card">
        <h2>Details</h2>
        <dl className="props">
          <dt>Computer name</dt><dd>{h.ComputerName}</dd>
          <dt>Data directory</dt><dd className="mono small">{h.DataDir}</dd>
          <dt>Virtual machine path</dt><dd className="mono small">{h.VirtualMachinePath}</dd>
          <dt>QEMU</dt><dd>{h.QemuVersion}</dd>
          <dt>Dynamic MAC address range</dt><dd className="mono small" data-mac-pool="">{mac(h.MacAddressMinimum)} – {mac(h.MacAddressMaximum)}</dd>
        </dl>
      </div>
      <MeteringGraphs path="/host/history" caption="All virtual machines together: CPU (share of the host's processors), memory, disk and network." />
    </section>
  );
}

/** 00155D381F00 as Hyper-V Manager writes it: 00-15-5D-38-1F-00. */
function mac(hex: string): string {
  return hex.match(/../g)?.join('-') ?? hex;
}

function Tile({ label, value, sub, children }: { label: string; value: string; sub?: string; children?: ReactNode }) {
  return (
    <div className="tile" data-tile={label}>
      <div className="tile-label">{label}</div>
      <div className="tile-value">{value}</div>
      {children}
      {sub && <div className="tile-sub muted small">{sub}</div>}
    </div>
  );
}
