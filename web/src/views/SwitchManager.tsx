// Virtual Switch Manager: the host's switches (Get-/New-/Remove-VMSwitch), each switch's
// counters with every drop by reason, and its extensions (Enable-/Disable-VMSwitchExtension).
import { useState, type FormEvent } from 'react';
import { api, switchPath, type ApiError, type HostNicView, type NetAdapterView, type SwitchExtension, type SwitchView } from '../api.ts';
import { bytes } from '../format.ts';
import { useApi, useInterval, useLiveTick } from '../live.ts';
import { go, href } from '../router.ts';
import { useSubmit } from '../submit.ts';
import { Confirm, PageHeader } from './common.tsx';
import { toast } from './Toasts.tsx';

const TYPES: { type: SwitchView['SwitchType']; text: string }[] = [
  { type: 'Private', text: 'Private: only the VMs on this host connected to it' },
  { type: 'Internal', text: 'Internal: the VMs and this host (a host network adapter)' },
  { type: 'External', text: 'External: the VMs and the physical network through a host adapter' },
];

export function SwitchManager({ name }: { name?: string }) {
  const tick = useLiveTick();
  const every5 = useInterval(5000);
  const { data, error } = useApi<SwitchView[]>('/switches', [tick, every5]);
  if (error && !data) return <p className="error-text" role="alert">{error.message}</p>;
  if (!data) return <p className="muted" aria-busy="true">Loading…</p>;
  const current = name ? data.find((s) => s.Name.toLowerCase() === name.toLowerCase()) : undefined;
  if (name && !current) return <p className="error-text" role="alert">No virtual switch named {name}. <a href={href('switches')}>All switches</a></p>;
  if (current) return <SwitchDetail sw={current} tick={tick} />;
  return (
    <section aria-labelledby="sw-title">
      <PageHeader title={<span id="sw-title">Virtual Switches</span>} />
      <table className="grid switches">
        <thead><tr><th>Name</th><th>Type</th><th>Status</th><th className="num">Connected ports</th><th className="num">Received</th><th className="num">Sent</th><th className="num">Dropped frames</th><th>Extensions</th></tr></thead>
        <tbody>
          {data.length === 0 && <tr><td colSpan={8} className="empty">No virtual switches yet. Create one below, then connect VM network adapters to it.</td></tr>}
          {data.map((s) => (
            <tr key={s.Id} data-switch={s.Name}>
              <td><a className="vm-link" href={href('switches', s.Name)}>{s.Name}</a></td>
              <td>{s.SwitchType}{s.NetAdapterName ? <span className="muted small"> on {s.NetAdapterName}</span> : null}</td>
              <td className={s.Status === 'OK' ? undefined : 'error-text'}>{s.Status}</td>
              <td className="num">{s.ConnectedPorts} / {s.Ports}</td>
              <td className="num">{bytes(s.Statistics.rxBytes)}</td>
              <td className="num">{bytes(s.Statistics.txBytes)}</td>
              <td className="num">{dropTotal(s)}</td>
              <td>{s.Extensions.join(', ') || <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <NewSwitchForm />
    </section>
  );
}

const dropTotal = (s: SwitchView): number => Object.values(s.Statistics.drops).reduce((a, b) => a + b, 0);

function NewSwitchForm() {
  const empty = { name: '', type: 'Private' as SwitchView['SwitchType'], adapter: '', notes: '' };
  const [f, setF] = useState(empty);
  const { data: adapters } = useApi<NetAdapterView[]>('/net-adapters', []);
  const free = (adapters ?? []).filter((a) => a.VMSwitchName === null);
  const { busy, error, submit: call } = useSubmit();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    // Like New-VMSwitch: an External switch is named by its host adapter, the others by their type.
    const binding = f.type === 'External' ? { NetAdapterName: f.adapter || (free[0]?.Name ?? '') } : { SwitchType: f.type };
    void call(async () => {
      const sw = await api<SwitchView>('POST', '/switches', { Name: f.name, ...binding, ...(f.notes ? { Notes: f.notes } : {}) });
      toast(`Created virtual switch ${sw.Name}`);
      setF(empty);
    });
  };
  return (
    <form className="card settings" onSubmit={submit} aria-labelledby="new-sw">
      <h2 id="new-sw">New virtual switch</h2>
      <label htmlFor="sw-name">Switch name</label>
      <input id="sw-name" value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} />
      <fieldset>
        <legend>Connection type</legend>
        {TYPES.map((t) => (
          <label key={t.type} className="check-label"><input type="radio" name="sw-type" checked={f.type === t.type} onChange={() => setF({ ...f, type: t.type })} /> {t.text}</label>
        ))}
      </fieldset>
      {f.type === 'External' && (free.length === 0
        ? <p className="notice">This host has no free network adapter: start vmhostd with --net-adapter NAME=udp:LOCAL-&gt;REMOTE (see the README).</p>
        : <>
          <label htmlFor="sw-adapter">Host network adapter</label>
          <select id="sw-adapter" value={f.adapter || free[0]!.Name} onChange={(e) => setF({ ...f, adapter: e.target.value })}>
            {free.map((a) => <option key={a.Name} value={a.Name}>{a.Name} — {a.InterfaceDescription}</option>)}
          </select>
        </>)}
      <label htmlFor="sw-notes">Notes</label>
      <textarea id="sw-notes" rows={2} value={f.notes} onChange={(e) => setF({ ...f, notes: e.target.value })} />
      {error && <p className="error-text" role="alert">{error.message}</p>}
      <div className="form-actions"><button type="submit" className="btn primary" disabled={busy || f.name.trim() === ''}>{busy ? 'Creating…' : 'Create'}</button></div>
    </form>
  );
}

function SwitchDetail({ sw, tick }: { sw: SwitchView; tick: number }) {
  const { data: exts, reload } = useApi<SwitchExtension[]>(`${switchPath(sw.Name)}/extensions`, [tick]);
  const { data: hostNics } = useApi<HostNicView[]>(`/host/network-adapters?SwitchName=${encodeURIComponent(sw.Name)}`, [tick]);
  const [confirm, setConfirm] = useState(false);
  const [removeError, setRemoveError] = useState<string>();
  const remove = async () => {
    setConfirm(false);
    try {
      await api('DELETE', `${switchPath(sw.Name)}${sw.Ports > 0 ? '?force=true' : ''}`);
      toast(`Removed virtual switch ${sw.Name}`);
      go('switches');
    } catch (e) {
      setRemoveError((e as ApiError).message);
    }
  };
  const toggle = async (x: SwitchExtension, enabled: boolean) => {
    try {
      await api('PATCH', `${switchPath(sw.Name)}/extensions`, { Name: x.Name, Enabled: enabled });
    } catch (e) {
      toast(`${x.Name}: ${(e as ApiError).message}`, 'error');
    }
    reload();
  };
  const drops = Object.entries(sw.Statistics.drops).sort((a, b) => b[1] - a[1]);
  return (
    <section aria-labelledby="sw-title">
      <nav className="crumbs" aria-label="Breadcrumb"><a href={href('switches')}>Virtual Switches</a> › <span>{sw.Name}</span></nav>
      <PageHeader title={<span id="sw-title">{sw.Name} <span className="badge">{sw.SwitchType}</span></span>}>
        <button type="button" className="btn danger-outline" onClick={() => setConfirm(true)}>Remove…</button>
      </PageHeader>
      {removeError && <p className="error-text" role="alert">{removeError}</p>}
      <div className="cards">
        <div className="card">
          <h2>Traffic</h2>
          <dl className="props">
            <dt>Connected ports</dt><dd>{sw.ConnectedPorts} of {sw.Ports}</dd>
            <dt>Received</dt><dd>{sw.Statistics.rxFrames} frames, {bytes(sw.Statistics.rxBytes)}</dd>
            <dt>Sent</dt><dd>{sw.Statistics.txFrames} frames, {bytes(sw.Statistics.txBytes)}</dd>
            <dt>Learned MAC addresses</dt><dd>{sw.Statistics.macEntries}</dd>
            {sw.SwitchType === 'External' && <><dt>Host adapter</dt><dd>{sw.NetAdapterName ?? '—'} <span className="muted small">{sw.NetAdapterInterfaceDescription ?? ''}</span> {sw.Status !== 'OK' && <span className="error-text">({sw.Status})</span>}</dd></>}
            <dt>Host vNICs</dt><dd>{(hostNics ?? []).length === 0 ? <span className="muted">none</span> : (hostNics ?? []).map((n) => (
              <span key={n.Id} className="mono small" data-host-nic={n.Name}>{n.Name} ({n.InterfaceName}{n.IPAddresses.length ? `, ${n.IPAddresses.join(', ')}` : ''}) </span>
            ))}</dd>
            <dt>Bandwidth mode</dt><dd>{sw.MinimumBandwidthMode}</dd>
            <dt>Notes</dt><dd>{sw.Notes || <span className="muted">—</span>}</dd>
          </dl>
        </div>
        <div className="card">
          <h2>Dropped frames by reason</h2>
          {drops.length === 0 ? <p className="muted">Nothing dropped.</p> : (
            <table className="grid drops">
              <thead><tr><th>Reason</th><th className="num">Frames</th></tr></thead>
              <tbody>{drops.map(([r, n]) => <tr key={r}><td className="mono">{r}</td><td className="num">{n}</td></tr>)}</tbody>
            </table>
          )}
        </div>
      </div>
      <div className="card">
        <h2>Extensions</h2>
        <table className="grid">
          <thead><tr><th>Extension</th><th>Type</th><th>Enabled</th><th>Description</th></tr></thead>
          <tbody>
            {(exts ?? []).map((x) => (
              <tr key={x.Name}>
                <td className="mono">{x.Name}</td>
                <td>{x.ExtensionType}</td>
                <td><input type="checkbox" aria-label={`${x.Name} enabled`} checked={x.Enabled} onChange={(e) => void toggle(x, e.target.checked)} /></td>
                <td className="muted">{x.Description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {confirm && (
        <Confirm title={`Remove ${sw.Name}?`} confirmLabel="Remove" danger onCancel={() => setConfirm(false)} onConfirm={() => void remove()}>
          <p>{sw.Ports > 0 ? `${sw.Ports} network adapter(s) are connected to it; they will be disconnected.` : 'No network adapter is connected to it.'}</p>
        </Confirm>
      )}
    </section>
  );
}
