// The shell: sign-in gate, top bar, navigation and the view for the current route. Each
// feature of the platform is one entry in SECTIONS (and VM_TABS in VmDetail), so disks,
// switches, checkpoints and the cluster add a panel each, not a rewrite.
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api, onUnauthorized, type SessionView } from './api.ts';
import { live, useConnected } from './live.ts';
import { href, useRoute } from './router.ts';
import { ToastHost } from './views/Toasts.tsx';
import { SignIn } from './views/SignIn.tsx';
import { VmList } from './views/VmList.tsx';
import { ImportVm } from './views/ImportVm.tsx';
import { NewVmWizard } from './views/NewVmWizard.tsx';
import { VmDetail } from './views/VmDetail.tsx';
import { ConsoleView } from './views/ConsoleView.tsx';
import { HostPanel } from './views/HostPanel.tsx';
import { HostsView } from './views/HostsView.tsx';
import { SwitchManager } from './views/SwitchManager.tsx';
import { VmNetworks } from './views/VmNetworks.tsx';
import { JobsView } from './views/JobsView.tsx';
import { EventsView } from './views/EventsView.tsx';
import { ClusterManager } from './views/ClusterManager.tsx';

interface Section { path: string; label: string; render: (rest: string[]) => ReactNode }

const SECTIONS: Section[] = [
  {
    path: 'vms', label: 'Virtual Machines',
    render: ([vm, sub]) => {
      if (!vm) return <VmList />;
      if (sub === 'console') return <ConsoleView vm={vm} />;
      return <VmDetail vm={vm} tab={sub} />;
    },
  },
  { path: 'new', label: 'New Virtual Machine', render: () => <NewVmWizard /> },
  { path: 'import', label: 'Import Virtual Machine', render: () => <ImportVm /> },
  { path: 'switches', label: 'Virtual Switches', render: ([name]) => <SwitchManager name={name} /> },
  { path: 'vm-networks', label: 'VM Networks', render: () => <VmNetworks /> },
  { path: 'host', label: 'Host', render: () => <HostPanel /> },
  { path: 'hosts', label: 'Hosts', render: () => <HostsView /> },
  { path: 'cluster', label: 'Failover Cluster', render: () => <ClusterManager /> },
  { path: 'jobs', label: 'Jobs', render: () => <JobsView /> },
  { path: 'events', label: 'Events', render: () => <EventsView /> },
];

export function App() {
  const [session, setSession] = useState<SessionView | null | undefined>(undefined);
  const route = useRoute();

  const signedOut = useCallback(() => { live.stop(); setSession(null); }, []);
  useEffect(() => {
    onUnauthorized(signedOut);
    api<SessionView>('GET', '/session').then(setSession, () => setSession(null));
  }, [signedOut]);
  useEffect(() => {
    if (!session) return;
    live.start(signedOut);
    return () => live.stop();
  }, [session, signedOut]);

  if (session === undefined) return <div className="splash" aria-busy="true">Loading…</div>;
  if (session === null) return <SignIn onSignedIn={setSession} />;

  const [first = 'vms', ...rest] = route;
  const section = SECTIONS.find((s) => s.path === first) ?? SECTIONS[0]!;
  const full = first === 'vms' && rest[1] === 'console';
  return (
    <div className={full ? 'shell shell-console' : 'shell'}>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <TopBar session={session} onSignOut={async () => { await api('POST', '/session/logout').catch(() => undefined); signedOut(); }} />
      <nav className="sidebar" aria-label="Sections">
        <ul>
          {SECTIONS.map((s) => (
            <li key={s.path}>
              <a href={href(s.path)} aria-current={s === section ? 'page' : undefined} className={s === section ? 'active' : undefined}>{s.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content" id="main" tabIndex={-1}>{section.render(first === section.path ? rest : [])}</main>
      <ToastHost />
    </div>
  );
}

function TopBar({ session, onSignOut }: { session: SessionView; onSignOut: () => void }) {
  const connected = useConnected();
  return (
    <header className="topbar">
      <a className="brand" href={href('vms')}>
        <img src="/favicon.svg" alt="" width={22} height={22} />
        <span>vmhost Manager</span>
      </a>
      <span className="host-name" title="Host">{session.ComputerName}</span>
      <span className={connected ? 'live-dot on' : 'live-dot'} role="status" title={connected ? 'Live updates connected' : 'Live updates reconnecting'}>
        {connected ? 'Live' : 'Reconnecting…'}
      </span>
      <span className="spacer" />
      {session.UserName && <span className="user-name" title="Signed in as">{session.UserName}{session.Role ? ` (${session.Role})` : ''}</span>}
      <span className="version">v{session.Version}</span>
      <button type="button" className="btn ghost" onClick={onSignOut}>Sign out</button>
    </header>
  );
}
