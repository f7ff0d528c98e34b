// A VM's boot settings on its Settings tab. Generation 2 (Get-/Set-VMFirmware): the boot
// order of its own devices and Secure Boot; generation 1 (Get-/Set-VMBios): the startup
// order of the four device classes and NumLock. Boot orders may change while the VM runs
// (from its next boot, as in Hyper-V); Secure Boot needs it off.
import { useState, type FormEvent } from 'react';
import { api, vmPath, type ApiError, type BiosDevice, type BiosView, type BootEntryView, type FirmwareView, type VmView } from '../api.ts';
import { canSetHardware } from '../actions.ts';
import { useApi } from '../live.ts';
import { toast } from './Toasts.tsx';

export function VmBootSettings({ vm, tick }: { vm: VmView; tick: number }) {
  const path = `${vmPath(vm.Id)}/${vm.Generation === 2 ? 'firmware' : 'bios'}`;
  const { data, error } = useApi<FirmwareView | BiosView>(path, [tick]);
  if (error && !data) return <p className="error-text" role="alert">{error.message}</p>;
  if (!data) return null;
  // Keyed by what the host has: a change made elsewhere (CLI, another browser) starts the form over.
  return 'BootOrder' in data
    ? <FirmwareForm key={JSON.stringify(data)} vm={vm} fw={data} />
    : <BiosForm key={JSON.stringify(data)} vm={vm} bios={data as BiosView} />;
}

interface OrderItem { id: string; label: string; detail?: string }

/** An ordered list with Move up / Move down on each entry. */
function OrderList({ label, items, onMove }: { label: string; items: OrderItem[]; onMove: (from: number, to: number) => void }) {
  return (
    <ol className="boot-order" aria-label={label}>
      {items.map((it, i) => (
        <li key={it.id} data-boot={it.id}>
          <span className="boot-no">{i + 1}</span>
          <span className="boot-what">{it.label}{it.detail && <span className="muted small">{it.detail}</span>}</span>
          <button type="button" className="btn small" disabled={i === 0} aria-label={`Move ${it.label} up`} onClick={() => onMove(i, i - 1)}>Up</button>
          <button type="button" className="btn small" disabled={i === items.length - 1} aria-label={`Move ${it.label} down`} onClick={() => onMove(i, i + 1)}>Down</button>
        </li>
      ))}
    </ol>
  );
}

function moved<T>(list: T[], from: number, to: number): T[] {
  const next = [...list];
  const [it] = next.splice(from, 1);
  next.splice(to, 0, it!);
  return next;
}

/** Save `body` with PATCH; toast the outcome. */
function useSave(vm: VmView, what: string) {
  const [busy, setBusy] = useState(false);
  const save = async (path: string, body: Record<string, unknown>) => {
    setBusy(true);
    try {
      await api('PATCH', `${vmPath(vm.Id)}/${path}`, body);
      toast(`Saved the ${what} of ${vm.Name}${vm.State === 'Off' ? '' : ' (from its next boot)'}`);
    } catch (e) {
      toast(`${what}: ${(e as ApiError).message}`, 'error');
    } finally {
      setBusy(false);
    }
  };
  return { busy, save };
}

function FirmwareForm({ vm, fw }: { vm: VmView; fw: FirmwareView }) {
  const [order, setOrder] = useState<BootEntryView[]>(fw.BootOrder);
  const [secure, setSecure] = useState(fw.SecureBoot);
  const { busy, save } = useSave(vm, 'firmware settings');
  const off = canSetHardware(vm.State);
  const reason = off ? undefined : `Turn off the VM to change Secure Boot (it is ${vm.State}).`;

  const orderChanged = order.some((b, i) => b.Id !== fw.BootOrder[i]?.Id);
  const change: Record<string, unknown> = {};
  if (orderChanged) change.BootOrder = order.map((b) => b.Id);
  if (off && secure !== fw.SecureBoot) change.EnableSecureBoot = secure === 'On';
  const dirty = Object.keys(change).length > 0;

  const submit = (e: FormEvent) => { e.preventDefault(); void save('firmware', change); };
  return (
    <form className="settings" onSubmit={submit} aria-label="Firmware">
      <fieldset>
        <legend>Firmware</legend>
        <p className="muted small">The firmware tries these devices in order; changes apply from the next boot.</p>
        {order.length === 0 ? <p className="muted">No bootable device: the VM runs the built-in test guest.</p> : (
          <OrderList label="Boot order" items={order.map((b) => ({ id: b.Id, label: b.Device, detail: b.Description }))} onMove={(a, b) => setOrder(moved(order, a, b))} />
        )}
        <label htmlFor="fw-secure">Secure Boot</label>
        <select id="fw-secure" value={secure} disabled={!off} aria-describedby={reason ? 'fw-secure-reason' : undefined} onChange={(e) => setSecure(e.target.value as 'On' | 'Off')}>
          <option value="On">On</option>
          <option value="Off">Off</option>
        </select>
        {reason && <p id="fw-secure-reason" className="notice">{reason}</p>}
      </fieldset>
      <div className="form-actions">
        <button type="button" className="btn" disabled={!dirty || busy} onClick={() => { setOrder(fw.BootOrder); setSecure(fw.SecureBoot); }}>Reset</button>
        <button type="submit" className="btn primary" disabled={!dirty || busy}>{busy ? 'Saving…' : 'Save firmware settings'}</button>
      </div>
    </form>
  );
}

const BIOS_LABELS: Record<BiosDevice, string> = { CD: 'CD', IDE: 'IDE (hard drive)', LegacyNetworkAdapter: 'Legacy Network adapter', Floppy: 'Floppy' };

function BiosForm({ vm, bios }: { vm: VmView; bios: BiosView }) {
  const [order, setOrder] = useState<BiosDevice[]>(bios.StartupOrder);
  const [numLock, setNumLock] = useState(bios.NumLockEnabled);
  const { busy, save } = useSave(vm, 'BIOS settings');

  const change: Record<string, unknown> = {};
  if (order.some((d, i) => d !== bios.StartupOrder[i])) change.StartupOrder = order;
  if (numLock !== bios.NumLockEnabled) change.EnableNumLock = numLock;
  const dirty = Object.keys(change).length > 0;

  const submit = (e: FormEvent) => { e.preventDefault(); void save('bios', change); };
  return (
    <form className="settings" onSubmit={submit} aria-label="BIOS">
      <fieldset>
        <legend>BIOS</legend>
        <p className="muted small">Startup order: the BIOS tries these device classes in order (IDE drives and DVDs, legacy network adapters); changes apply from the next boot.</p>
        <OrderList label="Startup order" items={order.map((d) => ({ id: d, label: BIOS_LABELS[d] }))} onMove={(a, b) => setOrder(moved(order, a, b))} />
        <label className="check-label"><input type="checkbox" checked={numLock} onChange={(e) => setNumLock(e.target.checked)} /> Num Lock on at startup</label>
      </fieldset>
      <div className="form-actions">
        <button type="button" className="btn" disabled={!dirty || busy} onClick={() => { setOrder(bios.StartupOrder); setNumLock(bios.NumLockEnabled); }}>Reset</button>
        <button type="submit" className="btn primary" disabled={!dirty || busy}>{busy ? 'Saving…' : 'Save BIOS settings'}</button>
      </div>
    </form>
  );
}
