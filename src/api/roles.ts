// The three roles, modelled on a Hyper-V host's groups:
// - Administrator (Hyper-V Administrators): everything — create, configure and remove VMs,
//   disks, switches, teams, host vNICs; users, tokens and VMConnect grants; the audit log.
// - Operator (what Hyper-V admins delegate to a help desk): everything a Viewer can, plus
//   the power of existing VMs — Start/Stop/Restart/Suspend/Resume/Save-VM,
//   Remove-VMSavedState, Debug-VM (NMI) — but never their configuration, never the host's.
// - Viewer (read-only): every Get-* of VMs, jobs, events, disks, switches and the host.
// VMConnect (the console: VNC and serial sockets, the serial log) is separate, as in
// Hyper-V: a non-Administrator needs Grant-VMConnectAccess for that VM, whatever the role.
export const ROLES = ['Viewer', 'Operator', 'Administrator'] as const;
export type Role = (typeof ROLES)[number];

/** True when `have` includes everything `need` may do. */
export function roleIncludes(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** Who is calling, as the access hook found out (src/api/access.ts). */
export interface Identity {
  UserName: string;
  Role: Role;
  /** How the request proved it: the host's token, a user's token, or a browser session. */
  Via: 'token' | 'session';
}

/** The daemon's own token (<data-dir>/token) signs in as this built-in Administrator. */
export const BUILTIN_ADMIN = 'admin';
