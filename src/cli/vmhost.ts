// bin/vmhost entry point.
import { main } from './main.ts';
import { cmdletRegistry } from './cmdlets/index.ts';

process.exitCode = await main(process.argv.slice(2), { registry: cmdletRegistry(), stdout: process.stdout, stderr: process.stderr });
