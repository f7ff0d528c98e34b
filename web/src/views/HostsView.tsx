// Hosts: the other vmhost hosts this console moves VMs to (hosts.ts keeps the list in the
// browser). Adding one takes a name and its API address; nothing is asked of that host here —
// the Move dialog asks for its credential when a VM goes there.
import { useState } from 'react';
import { ADDRESS, addHost, removeHost, useHosts } from '../hosts.ts';
import { PageHeader } from './common.tsx';

export function HostsView() {
  const hosts = useHosts();
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const bad = address !== '' && !ADDRESS.test(address.trim());
  const add = () => {
    const a = address.trim();
    if (!ADDRESS.test(a)) return;
    addHost({ Name: name.trim() || a, Address: a });
    setName('');
    setAddress('');
  };
  return (
    <section>
      <PageHeader title="Hosts" />
      <p className="muted small">Hosts this console moves virtual machines to (Move…). The list stays in this browser; a host's credential is asked for at each move.</p>
      <table className="grid" aria-label="Hosts">
        <thead><tr><th>Name</th><th>Address</th><th /></tr></thead>
        <tbody>
          {hosts.length === 0 && <tr><td colSpan={3} className="muted">No hosts yet: add one below.</td></tr>}
          {hosts.map((h) => (
            <tr key={h.Address}>
              <td>{h.Name}</td>
              <td><code>{h.Address}</code></td>
              <td><button type="button" className="btn danger-outline" aria-label={`Remove ${h.Name}`} onClick={() => removeHost(h.Address)}>Remove</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="inline-form" aria-label="Add a host" onSubmit={(e) => { e.preventDefault(); add(); }}>
        <label htmlFor="host-name">Name</label>
        <input id="host-name" placeholder="hv2" value={name} onChange={(e) => setName(e.target.value)} />
        <label htmlFor="host-address">Address</label>
        <input id="host-address" placeholder="127.0.0.1:8471" value={address} aria-invalid={bad} onChange={(e) => setAddress(e.target.value)} />
        <button type="submit" className="btn primary" disabled={address.trim() === '' || bad}>Add host</button>
        {bad && <span className="field-error" role="alert">Write the host's API address as HOST:PORT</span>}
      </form>
    </section>
  );
}
