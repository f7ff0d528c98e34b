// A password for New-/Set-VMHostUser, never from the command line (it would sit in the
// shell history and in /proc/<pid>/cmdline): -PasswordFile <path> (its first line), else the
// environment variable VMHOST_USER_PASSWORD, else typed at the terminal without echo, else
// the first line of stdin when it is a pipe.
import { readFile } from 'node:fs/promises';
import { VmhostError } from '../common/index.ts';

export const PASSWORD_ENV = 'VMHOST_USER_PASSWORD';

export async function readPassword(cmdlet: string, passwordFile: string | undefined, stderr: { write(s: string): unknown }): Promise<string> {
  if (passwordFile !== undefined) {
    const text = await readFile(passwordFile, 'utf8').catch((e: Error) => {
      throw new VmhostError('CLI_INVALID_PARAMETER', `${cmdlet}: parameter -PasswordFile: ${e.message}`, { cmdlet });
    });
    return firstLine(text);
  }
  const env = process.env[PASSWORD_ENV];
  if (env !== undefined) return env;
  if (process.stdin.isTTY) return typeHidden('Password: ', stderr);
  return firstLine(await readAll(process.stdin));
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}

async function readAll(s: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of s) out += String(chunk);
  return out;
}

/** Raw mode: keys are read one by one and nothing is echoed; Enter ends, Ctrl-C aborts. */
function typeHidden(prompt: string, stderr: { write(s: string): unknown }): Promise<string> {
  stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((ok, fail) => {
    let typed = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (err) fail(err); else ok(typed);
    };
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new VmhostError('CLI_INVALID_PARAMETER', 'password entry cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
