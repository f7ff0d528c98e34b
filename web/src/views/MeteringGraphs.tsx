// The last hour of a VM's (or the host's) CPU, memory, disk and network, from the daemon's
// history ring (GET …/history: 10 s steps, 360 points a series, fed by the metering sampler).
//
// Charts are uPlot's, not Recharts': uPlot is ~50 KB minified with no dependencies and draws on
// a canvas, so 4 charts × 360 points × 2–3 series redraw in a millisecond or two every 10 s;
// Recharts renders every point as an SVG node through React (thousands of nodes per page) and
// pulls in d3 and lodash (several hundred KB). uPlot needs no React binding: a ref'd <div>
// and an effect own the chart, and setData updates it in place.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bytes } from '../format.ts';
import { useApi, useInterval } from '../live.ts';

export interface HistoryView {
  StepSeconds: number;
  Times: number[];
  CpuPercent: (number | null)[];
  MemoryAssignedBytes: (number | null)[];
  MemoryDemandBytes: (number | null)[];
  DiskIops: (number | null)[];
  DiskReadBytesPerSecond: (number | null)[];
  DiskWrittenBytesPerSecond: (number | null)[];
  NetworkInBytesPerSecond: (number | null)[];
  NetworkOutBytesPerSecond: (number | null)[];
}

type Line = { key: keyof HistoryView; label: string; color: string; axis?: 'right' };
interface ChartDef { title: string; lines: Line[]; unit: (v: number) => string; rightUnit?: (v: number) => string }

const CHARTS: ChartDef[] = [
  { title: 'CPU', unit: (v) => `${v.toFixed(v < 10 ? 1 : 0)} %`, lines: [{ key: 'CpuPercent', label: 'CPU usage (% of host)', color: '#0f5cc0' }] },
  {
    title: 'Memory', unit: bytes,
    lines: [{ key: 'MemoryAssignedBytes', label: 'Assigned', color: '#1a7f37' }, { key: 'MemoryDemandBytes', label: 'Demand', color: '#9a6700' }],
  },
  {
    title: 'Disk', unit: (v) => `${bytes(v)}/s`, rightUnit: (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)} IOPS`,
    lines: [
      { key: 'DiskReadBytesPerSecond', label: 'Read', color: '#0f5cc0' }, { key: 'DiskWrittenBytesPerSecond', label: 'Written', color: '#b42318' },
      { key: 'DiskIops', label: 'IOPS', color: '#7a7a7a', axis: 'right' },
    ],
  },
  {
    title: 'Network', unit: (v) => `${bytes(v)}/s`,
    lines: [{ key: 'NetworkInBytesPerSecond', label: 'Received', color: '#0f5cc0' }, { key: 'NetworkOutBytesPerSecond', label: 'Sent', color: '#1a7f37' }],
  },
];

/** `path`: the history route (`/vms/<id>/history`, `/host/history`). */
export function MeteringGraphs({ path, caption }: { path: string; caption: string }) {
  const every10 = useInterval(10_000);
  const { data, error } = useApi<HistoryView>(path, [every10]);
  if (error && !data) return <p className="error-text" role="alert">{error.message}</p>;
  if (!data) return <p className="muted" aria-busy="true">Loading…</p>;
  return (
    <div className="card" data-graphs="">
      <h2>Last hour</h2>
      <p className="muted small">{caption} In {data.StepSeconds} s steps{data.Times.length === 0 ? ': the first point appears at the end of the current step.' : '.'}</p>
      <div className="graphs">
        {CHARTS.map((c) => <Chart key={c.title} def={c} data={data} />)}
      </div>
    </div>
  );
}

function Chart({ def, data }: { def: ChartDef; data: HistoryView }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // A series the daemon has no values for (memory demand while memory is static) is not drawn.
  const lines = def.lines.filter((l) => (data[l.key] as (number | null)[]).some((v) => v !== null));
  const shape = lines.map((l) => l.key).join(',');
  const rows = [data.Times, ...lines.map((l) => data[l.key] as (number | null)[])] as uPlot.AlignedData;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const right = lines.some((l) => l.axis === 'right');
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth), height: 170,
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 1.5, scale: l.axis === 'right' ? 'ops' : 'y', value: (_u: uPlot, v: number | null) => (v === null ? '–' : (l.axis === 'right' ? def.rightUnit! : def.unit)(v)) }))],
      scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] }, ops: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        {},
        { scale: 'y', size: 70, values: (_u, ticks) => ticks.map((t) => def.unit(t)) },
        ...(right ? [{ scale: 'ops', side: 1, size: 70, grid: { show: false }, values: (_u: uPlot, ticks: number[]) => ticks.map((t) => def.rightUnit!(t)) }] : []),
      ],
      legend: { live: true },
    };
    const u = new uPlot(opts, rows, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height: 170 }));
    resize.observe(el);
    return () => { resize.disconnect(); u.destroy(); plot.current = null; };
    // The chart is rebuilt only when its series change; new points go through setData below.
  }, [shape]);

  useEffect(() => { plot.current?.setData(rows); });

  return (
    <figure className="graph" data-graph={def.title}>
      <figcaption>{def.title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
