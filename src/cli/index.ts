// The CLI framework: PowerShell-style parameter binding, cmdlet definitions and registry, help,
// wildcards, table/list/JSON output, exit codes, and the `main` dispatcher. No HTTP here: cmdlet
// handlers (built on this) talk to the daemon.
//
// Defining and registering a cmdlet (the handler gets typed args: Name is string[] | undefined,
// TurnOff is boolean, ControllerType would be 'IDE' | 'SCSI' | undefined):
//
//   export const stopVm = defineCmdlet({
//     name: 'Stop-VM',
//     synopsis: 'Shut down, turn off or save a VM',
//     params: {
//       Name: { type: 'string', array: true, mandatory: true, wildcards: true, aliases: ['VMName'] },
//       TurnOff: { type: 'switch' }, Force: { type: 'switch' },
//     },
//     positional: ['Name'],
//     async run(args, ctx) { /* call the daemon for ctx.computerName */ return args.PassThru ? vm : undefined; },
//   });
//   const registry = new CmdletRegistry([stopVm]);
//   process.exitCode = await main(process.argv.slice(2), { registry, stdout: process.stdout, stderr: process.stderr });
//
// -Json shape: a handler returning an array prints a JSON array (even of one object); returning one
// object prints that object; returning nothing / [] prints nothing (see json.ts).
export { main, errorLine, type MainOptions } from './main.ts';
export { defineCmdlet, type CmdletDef, type AnyCmdletDef, type CmdletContext, type Writer } from './cmdlet.ts';
export { CmdletRegistry, validateDefinition } from './registry.ts';
export { bindArguments, resolveParamName, type Bound } from './bind.ts';
export { COMMON_PARAMS, type Args, type CommonArgs, type ParamSpec, type ParamType, type ParamValue, type Params } from './params.ts';
export { parseBool } from './values.ts';
export { parseSize, formatSize } from './size.ts';
export { hasWildcard, matchWildcard, matchesAny, wildcardToRegExp } from './wildcard.ts';
export { formatTable, formatList, formatRows, defaultView, type Column, type View, type Row } from './table.ts';
export { formatOutput } from './output.ts';
export { formatJson, pascalCaseKeys } from './json.ts';
export { formatTimeSpan, durationSeconds, formatCell } from './format-value.ts';
export { vmView } from './views.ts';
export { formatHelp, syntaxLine, wrapSyntax, formatCmdletList } from './help.ts';
export { CliErrorCode, cliError } from './errors.ts';
export { ExitCode, exitCodeFor } from './exit-codes.ts';
