// Cluster-Aware Updating's plugins (Invoke-CauRun -CauPluginName): what a node runs to update
// itself, made from -CauPluginArguments. Hyper-V ships Microsoft.WindowsUpdatePlugin and
// Microsoft.HotfixPlugin; vmhost's first is `vmhost.Command` — the administrator's own command
// (`apt-get install -y vmhost && systemctl restart vmhostd`, a script), run on each node by its
// daemon. Another updater is one more entry here.
import { VmhostError } from '../common/index.ts';

export interface CauPlugin {
  readonly name: string;
  readonly description: string;
  /** The shell command a node runs for its update; throws INVALID_ARGUMENT on arguments it cannot use. */
  updateCommand(args: Readonly<Record<string, string>>): string;
}

const commandPlugin: CauPlugin = {
  name: 'vmhost.Command',
  description: 'Runs the administrator\'s command (argument Command) on each node, with /bin/sh; exit status 0 is success. It may restart the node\'s daemon.',
  updateCommand(args) {
    const unknown = Object.keys(args).filter((k) => k !== 'Command');
    if (unknown.length > 0) throw new VmhostError('INVALID_ARGUMENT', `vmhost.Command takes only the argument Command, not ${unknown.join(', ')}`, { param: 'CauPluginArguments' });
    const cmd = args.Command?.trim();
    if (!cmd) throw new VmhostError('INVALID_ARGUMENT', 'vmhost.Command needs -CauPluginArguments @{Command=\'…\'}: the command each node runs to update itself', { param: 'CauPluginArguments' });
    return cmd;
  },
};

export const CAU_PLUGINS: readonly CauPlugin[] = [commandPlugin];
export const DEFAULT_CAU_PLUGIN = commandPlugin.name;

export function cauPlugin(name: string): CauPlugin {
  const p = CAU_PLUGINS.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!p) throw new VmhostError('NOT_FOUND', `No CAU plugin '${name}' is registered (${CAU_PLUGINS.map((x) => x.name).join(', ')})`, { plugin: name });
  return p;
}
