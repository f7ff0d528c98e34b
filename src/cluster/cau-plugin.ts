// Cluster-Aware Updating's plugins (Invoke-CauRun/Invoke-CauScan -CauPluginName): what a node runs
// to update itself, and to list what it would install, made from -CauPluginArguments. Hyper-V
// ships Microsoft.WindowsUpdatePlugin and Microsoft.HotfixPlugin; vmhost's built-in is
// `vmhost.Command` — the administrator's own commands (`apt-get install -y vmhost && systemctl
// restart vmhostd`, a script), run on each node by its daemon. Register-CauPlugin adds named
// command templates (`apt-get install -y {Package}`): each `{Name}` is an argument, filled in
// shell-quoted, so an argument's value is never read as shell syntax.
import { VmhostError } from '../common/index.ts';
import type { EtcdClient } from './etcd-client.ts';
import { CAU_PLUGIN_PREFIX, cauPluginKey } from './cau-keys.ts';

export interface CauPlugin {
  readonly name: string;
  readonly description: string;
  readonly builtIn: boolean;
  /** The shell command a node runs for its update; throws INVALID_ARGUMENT on arguments it cannot use. */
  updateCommand(args: Readonly<Record<string, string>>): string;
  /**
   * The shell command a node runs for Invoke-CauScan: exit status 0 and one update per line of its
   * standard output (none: nothing to install); another status is the scan's failure.
   */
  scanCommand(args: Readonly<Record<string, string>>): string;
}

/** Register-CauPlugin's record: the templates' `{Name}`s are the plugin's arguments. */
export interface CauPluginRecord { Name: string; Description: string; UpdateCommand: string; ScanCommand?: string }

function badArgs(plugin: string, msg: string): never {
  throw new VmhostError('INVALID_ARGUMENT', `${plugin}: ${msg}`, { param: 'CauPluginArguments', plugin });
}

const COMMAND_ARGS = ['Command', 'ScanCommand'];
const commandPlugin: CauPlugin = {
  name: 'vmhost.Command',
  description: 'Runs the administrator\'s command (argument Command) on each node, with /bin/sh; exit status 0 is success. It may restart the node\'s daemon. '
    + 'Invoke-CauScan runs argument ScanCommand instead: each line it prints is an update the node would get.',
  builtIn: true,
  updateCommand(args) {
    return commandArg(args, 'Command', 'the command each node runs to update itself');
  },
  scanCommand(args) {
    return commandArg(args, 'ScanCommand', 'the command each node runs to list its updates, one per line');
  },
};

function commandArg(args: Readonly<Record<string, string>>, key: string, what: string): string {
  const unknown = Object.keys(args).filter((k) => !COMMAND_ARGS.includes(k));
  if (unknown.length > 0) badArgs(commandPlugin.name, `takes only the arguments ${COMMAND_ARGS.join(' and ')}, not ${unknown.join(', ')}`);
  const cmd = args[key]?.trim();
  if (!cmd) badArgs(commandPlugin.name, `needs -CauPluginArguments @{${key}='…'}: ${what}`);
  return cmd;
}

export const BUILT_IN_CAU_PLUGINS: readonly CauPlugin[] = [commandPlugin];
export const DEFAULT_CAU_PLUGIN = commandPlugin.name;

const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9]*)\}/g;
const placeholders = (template: string): string[] => [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
const shellQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** A registered plugin: its templates filled with the run's arguments, each one required, none unknown. */
export function templatePlugin(rec: CauPluginRecord): CauPlugin {
  const names = new Set([...placeholders(rec.UpdateCommand), ...placeholders(rec.ScanCommand ?? '')]);
  const fill = (template: string, args: Readonly<Record<string, string>>): string => {
    const unknown = Object.keys(args).filter((k) => !names.has(k));
    if (unknown.length > 0) badArgs(rec.Name, `has no argument ${unknown.join(', ')} (its arguments: ${[...names].join(', ') || 'none'})`);
    return template.replace(PLACEHOLDER, (_, k: string) => {
      const v = args[k];
      if (v === undefined) badArgs(rec.Name, `needs the argument ${k} (-CauPluginArguments @{${k}='…'})`);
      return shellQuote(v);
    });
  };
  return {
    name: rec.Name, description: rec.Description, builtIn: false,
    updateCommand: (args) => fill(rec.UpdateCommand, args),
    scanCommand: (args) => (rec.ScanCommand !== undefined ? fill(rec.ScanCommand, args) : badArgs(rec.Name, 'was registered without a -ScanCommand: it cannot scan')),
  };
}

/** Register-CauPlugin's input checked: a name not a built-in's, templates whose placeholders are argument names. */
export function pluginRecord(input: CauPluginRecord): CauPluginRecord {
  if (BUILT_IN_CAU_PLUGINS.some((p) => p.name.toLowerCase() === input.Name.toLowerCase())) {
    throw new VmhostError('ALREADY_EXISTS', `'${input.Name}' is a built-in CAU plugin`, { plugin: input.Name });
  }
  for (const [param, t] of [['UpdateCommand', input.UpdateCommand], ['ScanCommand', input.ScanCommand]] as const) {
    if (t !== undefined && t.trim() === '') throw new VmhostError('INVALID_ARGUMENT', `Register-CauPlugin -${param}: empty`, { param });
    const stray = t?.replace(PLACEHOLDER, '').match(/\{[^}]*\}/);
    if (stray) throw new VmhostError('INVALID_ARGUMENT', `Register-CauPlugin -${param}: '${stray[0]}' is no argument placeholder ({Name}: a letter, then letters and digits)`, { param });
  }
  return { Name: input.Name, Description: input.Description, UpdateCommand: input.UpdateCommand, ...(input.ScanCommand !== undefined ? { ScanCommand: input.ScanCommand } : {}) };
}

/** Every plugin: the built-ins, then the registered ones by name. */
export async function cauPlugins(etcd: EtcdClient): Promise<CauPlugin[]> {
  const { kvs } = await etcd.range(CAU_PLUGIN_PREFIX);
  const registered = kvs.map((kv) => templatePlugin(JSON.parse(kv.value) as CauPluginRecord)).sort((a, b) => a.name.localeCompare(b.name));
  return [...BUILT_IN_CAU_PLUGINS, ...registered];
}

export async function cauPlugin(etcd: EtcdClient, name: string): Promise<CauPlugin> {
  const builtIn = BUILT_IN_CAU_PLUGINS.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (builtIn) return builtIn;
  const kv = await etcd.get(cauPluginKey(name));
  if (kv) return templatePlugin(JSON.parse(kv.value) as CauPluginRecord);
  throw new VmhostError('NOT_FOUND', `No CAU plugin '${name}' is registered (Get-CauPlugin lists them)`, { plugin: name });
}
