// Where the CLI keeps what it knows about other hosts (known_hosts, credentials.json):
// $VMHOST_CONFIG_DIR, else $XDG_CONFIG_HOME/vmhost, else ~/.config/vmhost. Created 0700.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function configDir(): string {
  return process.env.VMHOST_CONFIG_DIR || join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'vmhost');
}

/** The config dir, created (0700) if needed: before the CLI writes a pin or a credential into it. */
export function ensureConfigDir(): string {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
