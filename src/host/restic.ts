// The backup repository: Debian's restic (0.14), run as a child process per operation. Restic
// gives content-defined chunking with deduplication across points and VMs, AES-256 + Poly1305
// encryption under a key derived from the repository password, and verification of every blob
// it loads (a corrupted pack file fails `dump`; `restic check --read-data` by hand finds it too). It does not compress:
// compression came in restic 0.15 (repository version 2), which Debian 12 does not ship.
// Every failure is BACKUP_REPOSITORY_FAILED with restic's own words.
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';

export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  paths: string[];
  tags?: string[];
}

export interface ResticSummary {
  snapshot_id: string;
  /** Bytes of new data stored (after deduplication, before encryption overhead). */
  data_added: number;
  total_bytes_processed: number;
}

function failed(what: string, repo: string, stderr: string, cause?: unknown): VmhostError {
  const why = stderr.trim().split('\n').slice(-6).join('; ') || (cause instanceof Error ? cause.message : 'no message');
  return new VmhostError('BACKUP_REPOSITORY_FAILED', `restic ${what} on ${repo} failed: ${why}`, { op: 'backup', repository: repo, step: what }, cause === undefined ? undefined : { cause });
}

export class ResticRepository {
  constructor(readonly path: string, private readonly passwordFile: string, private readonly cacheDir: string) {}

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, RESTIC_REPOSITORY: this.path, RESTIC_PASSWORD_FILE: this.passwordFile, RESTIC_CACHE_DIR: this.cacheDir };
  }

  /** Whether a repository exists at the path (restic's config file). */
  async exists(): Promise<boolean> {
    return access(join(this.path, 'config')).then(() => true, () => false);
  }

  async init(): Promise<void> {
    await this.run('init', ['init']);
  }

  /** Run restic with `args`; stdout when it exits 0. `input`: fed to its stdin. */
  private run(what: string, args: string[], input?: AsyncIterable<Uint8Array>): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('restic', ['--quiet', ...args], { env: this.env(), stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let feedError: unknown;
      child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { err = (err + s).slice(-16_384); });
      child.once('error', (e) => reject(failed(what, this.path, err, e)));
      child.once('close', (code) => {
        if (feedError !== undefined) reject(feedError);
        else if (code === 0) resolve(out);
        else reject(failed(what, this.path, err || `exit code ${code}`));
      });
      if (input) {
        const stdin = child.stdin!;
        stdin.on('error', () => undefined); // restic gone: its exit says why
        void (async () => {
          try {
            for await (const b of input) if (!stdin.write(b)) await new Promise((r) => stdin.once('drain', r));
          } catch (e) {
            feedError = e;
            child.kill('SIGTERM');
          } finally {
            stdin.end();
          }
        })();
      }
    });
  }

  /** Store `data` as the file `name` of a new snapshot with `tags`. */
  async backupStream(name: string, tags: string[], data: AsyncIterable<Uint8Array>): Promise<ResticSummary> {
    const out = await this.run('backup', ['backup', '--json', '--stdin', '--stdin-filename', name, '--tag', tags.join(','), '--host', 'vmhost'], data);
    for (const line of out.split('\n').reverse()) {
      if (!line.includes('"summary"')) continue;
      return JSON.parse(line) as ResticSummary;
    }
    throw failed('backup', this.path, `no summary in its output: ${out.slice(-500)}`);
  }

  /** Snapshots carrying every tag in `tags`. */
  async snapshots(tags: string[]): Promise<ResticSnapshot[]> {
    const out = await this.run('snapshots', ['snapshots', '--json', ...(tags.length ? ['--tag', tags.join(',')] : [])]);
    return (JSON.parse(out || '[]') as ResticSnapshot[] | null) ?? [];
  }

  /** The file `name` of snapshot `id`, as it streams out of `restic dump` (blobs verified as they load). */
  async *dump(id: string, name: string): AsyncGenerator<Uint8Array> {
    const child = spawn('restic', ['--quiet', 'dump', id, name], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err = (err + s).slice(-16_384); });
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const spawnError = new Promise<never>((_, rej) => child.once('error', (e) => rej(failed('dump', this.path, err, e))));
    spawnError.catch(() => undefined);
    try {
      for await (const b of child.stdout) yield b as Buffer;
      const code = await Promise.race([exited, spawnError]);
      if (code !== 0) throw failed('dump', this.path, err || `exit code ${code}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
  }

  /** Forget snapshots and prune what only they used. */
  async forget(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.run('forget', ['forget', '--prune', ...ids]);
  }
}
