// VMConnect in the browser: the guest's screen through noVNC over the daemon's WebSocket
// bridge to QEMU's VNC socket (no guest network needed), and a serial terminal over the
// serial bridge. The screen reconnects by itself when the VM starts again.
import RFB from '@novnc/novnc';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { runAction, vmPath, type ApiError, type VmView } from '../api.ts';
import { canConnect } from '../actions.ts';
import { typeText } from '../keys.ts';
import { useApi, useLiveTick } from '../live.ts';
import { href } from '../router.ts';
import { StateBadge } from './common.tsx';
import { toast } from './Toasts.tsx';
import { stripAnsi } from './VmDetail.tsx';

function wsUrl(vmId: string, kind: 'vnc' | 'serial'): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1${vmPath(vmId)}/${kind}`;
}

export function ConsoleView({ vm: ref }: { vm: string }) {
  const tick = useLiveTick();
  const { data: vm, error } = useApi<VmView>(vmPath(ref), [tick]);
  const [tab, setTab] = useState<'screen' | 'serial'>('screen');

  if (error && !vm) return <p className="error-text" role="alert">{error.message}</p>;
  if (!vm) return <p className="muted" aria-busy="true">Loading…</p>;
  const up = canConnect(vm.State);
  // A new QEMU process is a new console: remount the viewer for it.
  const session = up ? `${vm.Id}:${vm.ProcessId ?? ''}` : 'off';

  return (
    <section className="console" aria-labelledby="console-title">
      <div className="console-head">
        <nav className="crumbs" aria-label="Breadcrumb"><a href={href('vms')}>Virtual Machines</a> › <a href={href('vms', vm.Name)}>{vm.Name}</a> › <span>Console</span></nav>
        <h1 id="console-title">{vm.Name} on {vm.ComputerName} <StateBadge state={vm.State} /></h1>
        <div className="tabs" role="tablist" aria-label="Console type">
          <button type="button" role="tab" aria-selected={tab === 'screen'} className={tab === 'screen' ? 'tab active' : 'tab'} onClick={() => setTab('screen')}>Screen</button>
          <button type="button" role="tab" aria-selected={tab === 'serial'} className={tab === 'serial' ? 'tab active' : 'tab'} onClick={() => setTab('serial')}>Serial (COM1)</button>
        </div>
      </div>
      {!up ? (
        <div className="console-off" role="status">
          <p>The virtual machine is <strong>{vm.State}</strong>. The console is available while it runs.</p>
          {(vm.State === 'Off' || vm.State === 'Saved') && (
            <button type="button" className="btn primary" onClick={() => runAction(vm.Id, 'start').catch((e: ApiError) => toast(e.message, 'error'))}>Start</button>
          )}
        </div>
      ) : tab === 'screen' ? <VncScreen key={session} vm={vm} /> : <SerialTerminal key={session} vm={vm} />}
    </section>
  );
}

function VncScreen({ vm }: { vm: VmView }) {
  const screen = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB>(undefined);
  const [status, setStatus] = useState('Connecting…');
  const [connected, setConnected] = useState(false);
  const [scale, setScale] = useState(() => localStorage.getItem('vmhost.console.scale') !== 'off');
  const [typing, setTyping] = useState(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const r = new RFB(screen.current!, wsUrl(vm.Id, 'vnc'), { wsProtocols: ['binary'], shared: true });
    r.scaleViewport = localStorage.getItem('vmhost.console.scale') !== 'off';
    r.background = '#0b0d10';
    r.focusOnClick = true;
    r.addEventListener('connect', () => { setConnected(true); setStatus('Connected'); r.focus(); });
    let gone = false;
    r.addEventListener('disconnect', (e) => {
      gone = true;
      setConnected(false);
      setStatus((e as CustomEvent<{ clean: boolean }>).detail.clean ? 'Disconnected (the VM stopped or the session ended)' : 'Connection lost');
    });
    r.addEventListener('securityfailure', (e) => setStatus(`Security failure: ${(e as CustomEvent<{ reason?: string }>).detail.reason ?? ''}`));
    rfb.current = r;
    // noVNC logs an error when a closed connection is closed again (the VM stopped first).
    return () => { rfb.current = undefined; if (!gone) r.disconnect(); };
  }, [vm.Id, attempt]);

  useEffect(() => {
    if (rfb.current) rfb.current.scaleViewport = scale;
    localStorage.setItem('vmhost.console.scale', scale ? 'on' : 'off');
  }, [scale]);

  const fullScreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void frame.current?.requestFullscreen().then(() => rfb.current?.focus());
  };

  return (
    <div className="console-body" ref={frame}>
      <div className="toolbar console-toolbar" role="toolbar" aria-label="Console controls">
        <button type="button" className="btn" disabled={!connected} onClick={() => { rfb.current?.sendCtrlAltDel(); rfb.current?.focus(); }}>Ctrl+Alt+Del</button>
        <button type="button" className="btn" disabled={!connected} onClick={() => setTyping(true)}>Type clipboard…</button>
        <button type="button" className="btn" aria-pressed={scale} onClick={() => setScale((s) => !s)}>{scale ? '✓ ' : ''}Scale to fit</button>
        <button type="button" className="btn" onClick={fullScreen}>Full screen</button>
        {!connected && <button type="button" className="btn" onClick={() => setAttempt((n) => n + 1)}>Reconnect</button>}
        <span className="spacer" />
        <span className={connected ? 'conn on' : 'conn'} role="status" data-testid="console-status">{status}</span>
      </div>
      <div className="screen" ref={screen} data-testid="console-screen" aria-label={`Screen of ${vm.Name}. Click to give it the keyboard.`} />
      {typing && <TypeDialog onClose={() => { setTyping(false); rfb.current?.focus(); }} onType={async (text) => { if (rfb.current) await typeText(rfb.current, text); }} />}
    </div>
  );
}

function TypeDialog({ onClose, onType }: { onClose: () => void; onType: (text: string) => Promise<void> }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (ref.current && !ref.current.open) ref.current.showModal();
    // Prefill from the clipboard when the browser allows it (it asks, or it refuses).
    navigator.clipboard?.readText?.().then((t) => setText((cur) => cur || t), () => undefined);
  }, []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    await onType(text);
    setBusy(false);
    onClose();
  };
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="type-title" onCancel={(e) => { e.preventDefault(); onClose(); }}>
      <form onSubmit={submit}>
        <h2 id="type-title">Type clipboard text</h2>
        <p className="muted small">The text is typed into the VM as key presses (US keyboard layout). A new line presses Enter.</p>
        <label htmlFor="type-text">Text</label>
        <textarea id="type-text" rows={5} value={text} onChange={(e) => setText(e.target.value)} autoFocus />
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>Cancel</button>
          <button type="submit" className="btn primary" disabled={busy || !text}>{busy ? 'Typing…' : 'Type'}</button>
        </div>
      </form>
    </dialog>
  );
}

const MAX_SCROLLBACK = 200_000;

function SerialTerminal({ vm }: { vm: VmView }) {
  const [out, setOut] = useState('');
  const [line, setLine] = useState('');
  const [status, setStatus] = useState('Connecting…');
  const ws = useRef<WebSocket>(undefined);
  const pre = useRef<HTMLPreElement>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    const s = new WebSocket(wsUrl(vm.Id, 'serial'));
    ws.current = s;
    s.onopen = () => setStatus('Connected');
    s.onmessage = (m) => setOut((o) => (o + stripAnsi(String(m.data))).slice(-MAX_SCROLLBACK));
    s.onclose = (e) => setStatus(e.code === 1000 ? `Disconnected: ${e.reason || 'closed'}` : 'Connection lost');
    return () => { ws.current = undefined; s.close(); };
  }, [vm.Id, attempt]);

  useEffect(() => { if (pre.current) pre.current.scrollTop = pre.current.scrollHeight; }, [out]);

  const send = (text: string) => { if (ws.current?.readyState === WebSocket.OPEN) ws.current.send(text); };
  const submit = (e: FormEvent) => { e.preventDefault(); send(`${line}\r`); setLine(''); };
  const open = status === 'Connected';

  return (
    <div className="console-body">
      <div className="toolbar console-toolbar" role="toolbar" aria-label="Serial controls">
        <button type="button" className="btn" disabled={!open} onClick={() => send('\x03')}>Ctrl+C</button>
        <button type="button" className="btn" onClick={() => setOut('')}>Clear</button>
        {!open && <button type="button" className="btn" onClick={() => setAttempt((n) => n + 1)}>Reconnect</button>}
        <span className="spacer" />
        <span className={open ? 'conn on' : 'conn'} role="status">{status}</span>
      </div>
      <pre ref={pre} className="terminal" tabIndex={0} aria-label="Serial console output" aria-live="off">{out || ' '}</pre>
      <form className="terminal-input" onSubmit={submit}>
        <label htmlFor="serial-line" className="sr-only">Command</label>
        <span className="prompt" aria-hidden="true">›</span>
        <input id="serial-line" value={line} onChange={(e) => setLine(e.target.value)} placeholder="Type a line and press Enter" autoComplete="off" spellCheck={false} disabled={!open} autoFocus />
        <button type="submit" className="btn" disabled={!open}>Send</button>
      </form>
    </div>
  );
}
