// A node's side of Cluster-Aware Updating: it runs what the run asks of it (cau-keys.ts
// CauRequest: the plugin's updater or a -Pre/-PostUpdateScript) and says how it ended. The
// updater may restart this very daemon (a new vmhost version), so the command runs detached —
// its own session, outliving the daemon — and its state is in files in the data dir
// (`DIR/cau/<RequestId>.json`, `.log`, `.exit`): whichever daemon of this node runs next finds
// the command, waits for it and reports its exit status and last output lines. A command past
// its timeout is killed (its whole process group); one whose process is gone without an exit
// status is reported as such. A reported command's output is kept for Save-CauDebugTrace in
// `DIR/cau/output/<RunId>/<RequestId>.log`, for the last KEPT_RUNS runs.
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CauRequest, CauResult } from './cau-keys.ts';

const OUTPUT_TAIL = 2000;
const KEPT_RUNS = 8;

interface Started { RunId: string; RequestId: string; Pid: number; StartedMs: number; TimeoutMs: number }

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export class CauRunner {
  private readonly dir: string;

  /** `env`: what the command is told about where it runs (node name, the daemon's pid and data dir). */
  constructor(dataDir: string, readonly env: Readonly<Record<string, string>>) {
    this.dir = join(dataDir, 'cau');
  }

  private file(id: string, ext: 'json' | 'log' | 'exit'): string {
    return join(this.dir, `${id}.${ext}`);
  }

  /** Whether this request was started on this node already (by this daemon or an earlier one). */
  async known(id: string): Promise<boolean> {
    return readFile(this.file(id, 'json')).then(() => true, () => false);
  }

  /** Start the request's command detached; its exit status lands in its .exit file. */
  async start(req: CauRequest): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const log = await open(this.file(req.RequestId, 'log'), 'w');
    try {
      // The outer shell outlives the daemon with the command and writes the command's status last.
      const child = spawn('/bin/sh', ['-c', '/bin/sh -c "$1"; echo $? > "$2"', 'cau', req.Command, this.file(req.RequestId, 'exit')], {
        detached: true, stdio: ['ignore', log.fd, log.fd],
        env: { ...process.env, ...this.env, VMHOST_CAU_RUN_ID: req.RunId, VMHOST_CAU_STAGE: req.Stage },
      });
      child.unref();
      const rec: Started = { RunId: req.RunId, RequestId: req.RequestId, Pid: child.pid!, StartedMs: Date.now(), TimeoutMs: req.TimeoutMs };
      await writeFile(this.file(req.RequestId, 'json'), JSON.stringify(rec));
    } finally {
      await log.close();
    }
  }

  /** The commands that ended (or were killed at their timeout) since the last call: each reported once, then its files go. */
  async collect(report: (r: CauResult) => Promise<void>): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -'.json'.length);
      const rec = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as Started;
      const exit = (await readFile(this.file(id, 'exit'), 'utf8').catch(() => '')).trim();
      let result: Pick<CauResult, 'ExitCode' | 'Message'> | undefined;
      if (/^\d+$/.test(exit)) result = { ExitCode: Number(exit) };
      else if (!alive(rec.Pid)) result = { ExitCode: null, Message: 'the command\'s process is gone without an exit status (the machine restarted?)' };
      else if (Date.now() > rec.StartedMs + rec.TimeoutMs) {
        try { process.kill(-rec.Pid, 'SIGKILL'); } catch { /* ended meanwhile */ }
        result = { ExitCode: null, Message: `the command did not end within ${Math.round(rec.TimeoutMs / 1000)} s: killed` };
      }
      if (!result) continue;
      const output = (await readFile(this.file(id, 'log'), 'utf8').catch(() => '')).slice(-OUTPUT_TAIL);
      await report({ RunId: rec.RunId, RequestId: id, Output: output, ...result });
      await this.keepOutput(rec.RunId, id);
      for (const ext of ['json', 'log', 'exit'] as const) await rm(this.file(id, ext), { force: true });
    }
  }

  private async keepOutput(runId: string, id: string): Promise<void> {
    const out = join(this.dir, 'output');
    await mkdir(join(out, runId), { recursive: true });
    await rename(this.file(id, 'log'), join(out, runId, `${id}.log`)).catch(() => undefined); // no output file: nothing to keep
    const runs = await Promise.all((await readdir(out)).map(async (r) => ({ r, at: (await stat(join(out, r))).mtimeMs })));
    for (const { r } of runs.sort((a, b) => b.at - a.at).slice(KEPT_RUNS)) await rm(join(out, r), { recursive: true, force: true });
  }

  /**
   * The commands' outputs on this node for Save-CauDebugTrace, newest first: the kept ones
   * (`<RunId>/<RequestId>.log`) and those of commands still running (`running/<RequestId>.log`);
   * each its last `perFile` bytes, no more than `total` bytes in all.
   */
  async outputs(perFile: number, total: number): Promise<{ Name: string; Data: Buffer }[]> {
    const found: { Name: string; path: string; at: number }[] = [];
    const add = async (Name: string, path: string): Promise<void> => {
      const st = await stat(path).catch(() => undefined);
      if (st?.isFile()) found.push({ Name, path, at: st.mtimeMs });
    };
    for (const n of (await readdir(this.dir).catch(() => [] as string[])).filter((x) => x.endsWith('.log'))) await add(`running/${n}`, join(this.dir, n));
    const out = join(this.dir, 'output');
    for (const r of await readdir(out).catch(() => [] as string[])) {
      for (const n of await readdir(join(out, r)).catch(() => [] as string[])) await add(`${r}/${n}`, join(out, r, n));
    }
    const files: { Name: string; Data: Buffer }[] = [];
    let left = total;
    for (const f of found.sort((a, b) => b.at - a.at)) {
      if (left <= 0) break;
      const data = await readFile(f.path).catch(() => Buffer.alloc(0));
      const tail = data.subarray(Math.max(0, data.length - Math.min(perFile, left)));
      files.push({ Name: f.Name, Data: tail });
      left -= tail.length;
    }
    return files;
  }
}
