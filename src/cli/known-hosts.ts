// The CLI's known_hosts (common/known-hosts.ts): in its config dir, so each admin pins the
// hosts they reach.
import { join } from 'node:path';
import { KnownHosts } from '../common/known-hosts.ts';
import { configDir } from './config-dir.ts';

export function cliKnownHosts(): KnownHosts {
  return new KnownHosts(join(configDir(), 'known_hosts'));
}
