// The host's users: <data-dir>/users.json (0600), one record per user with its role, its
// password as an scrypt hash (password-hash.ts), its API tokens as SHA-256 hashes (a token
// is 32 random bytes, so a fast hash is enough; the token itself is shown once, at
// creation) and the VMs it may open the console of (Grant-VMConnectAccess). Every change is
// written to the file before memory changes, one change at a time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmhostError } from '../common/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import { hashPassword, verifyNothing, verifyPassword, type PasswordHash } from './password-hash.ts';
import { BUILTIN_ADMIN, type Role } from './roles.ts';

interface TokenRecord { Id: string; Sha256: string; Created: string }

interface UserRecord {
  Name: string;
  Role: Role;
  Password?: PasswordHash;
  Tokens: TokenRecord[];
  /** VM ids this user may open the console of. */
  VMConnectAccess: string[];
  Created: string;
}

/** What the API shows of a user: never a hash. */
export interface UserView {
  Name: string;
  Role: Role;
  HasPassword: boolean;
  Tokens: { Id: string; Created: string }[];
  VMConnectAccess: string[];
  Created: string;
}

export interface NewUser { Name: string; Role: Role; Password?: string }
export interface UserChange { Role?: Role; Password?: string }

const FILE = 'users.json';
const TOKEN_PREFIX = 'vmhu_';

export class Users {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly listeners: (() => void)[] = [];

  private constructor(private readonly path: string, private users: UserRecord[]) {}

  static async load(dataDir: string): Promise<Users> {
    const path = join(dataDir, FILE);
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    const users = text === undefined ? [] : (JSON.parse(text) as { Users: UserRecord[] }).Users;
    return new Users(path, users);
  }

  list(): UserView[] {
    return this.users.map(view);
  }

  get(name: string): UserView {
    return view(this.find(name));
  }

  /** The user's current role, or undefined when there is no such user (any more). */
  roleOf(name: string): Role | undefined {
    return this.lookup(name)?.Role;
  }

  create(u: NewUser): Promise<UserView> {
    return this.change(async (users) => {
      if (u.Name.toLowerCase() === BUILTIN_ADMIN) {
        throw new VmhostError('ALREADY_EXISTS', `'${BUILTIN_ADMIN}' is the built-in Administrator (the host's token); choose another name`, { user: u.Name });
      }
      if (this.lookup(u.Name)) throw new VmhostError('ALREADY_EXISTS', `User '${u.Name}' already exists`, { user: u.Name });
      const rec: UserRecord = {
        Name: u.Name, Role: u.Role, Tokens: [], VMConnectAccess: [], Created: new Date().toISOString(),
        ...(u.Password === undefined ? {} : { Password: await hashPassword(u.Password) }),
      };
      return { users: [...users, rec], result: view(rec) };
    });
  }

  set(name: string, c: UserChange): Promise<UserView> {
    return this.change(async (users) => {
      const old = this.find(name);
      const rec: UserRecord = { ...old, ...(c.Role ? { Role: c.Role } : {}), ...(c.Password === undefined ? {} : { Password: await hashPassword(c.Password) }) };
      return { users: users.map((u) => (u === old ? rec : u)), result: view(rec) };
    });
  }

  remove(name: string): Promise<void> {
    return this.change(async (users) => {
      const old = this.find(name);
      return { users: users.filter((u) => u !== old), result: undefined };
    });
  }

  /** A new API token for the user: the secret is in the answer and nowhere else. */
  newToken(name: string): Promise<{ UserName: string; Id: string; Token: string; Created: string }> {
    return this.change(async (users) => {
      const old = this.find(name);
      const id = randomBytes(4).toString('hex');
      const token = `${TOKEN_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
      const t: TokenRecord = { Id: id, Sha256: sha256(token), Created: new Date().toISOString() };
      const rec = { ...old, Tokens: [...old.Tokens, t] };
      return { users: users.map((u) => (u === old ? rec : u)), result: { UserName: rec.Name, Id: id, Token: token, Created: t.Created } };
    });
  }

  removeToken(name: string, id: string): Promise<void> {
    return this.change(async (users) => {
      const old = this.find(name);
      if (!old.Tokens.some((t) => t.Id === id)) throw new VmhostError('NOT_FOUND', `User '${old.Name}' has no token '${id}'`, { user: old.Name, token: id });
      const rec = { ...old, Tokens: old.Tokens.filter((t) => t.Id !== id) };
      return { users: users.map((u) => (u === old ? rec : u)), result: undefined };
    });
  }

  /** Grant (true) or revoke (false) the user's console access to a VM; idempotent, like Hyper-V's. */
  setVmConnectAccess(name: string, vmId: string, granted: boolean): Promise<UserView> {
    return this.change(async (users) => {
      const old = this.find(name);
      const rest = old.VMConnectAccess.filter((v) => v !== vmId);
      const rec = { ...old, VMConnectAccess: granted ? [...rest, vmId] : rest };
      return { users: users.map((u) => (u === old ? rec : u)), result: view(rec) };
    });
  }

  /** Called after every change (the console sockets re-check who may stay connected). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  mayConnect(name: string, vmId: string): boolean {
    return this.lookup(name)?.VMConnectAccess.includes(vmId) ?? false;
  }

  /** The user a token belongs to. */
  byToken(token: string): { Name: string; Role: Role } | undefined {
    if (!token.startsWith(TOKEN_PREFIX)) return undefined;
    const h = Buffer.from(sha256(token), 'hex');
    return this.users.find((u) => u.Tokens.some((t) => timingSafeEqual(Buffer.from(t.Sha256, 'hex'), h)));
  }

  /** The user when the password is theirs; the same work is done for unknown names. */
  async checkPassword(name: string, password: string): Promise<{ Name: string; Role: Role } | undefined> {
    const u = this.lookup(name);
    if (!u?.Password) return verifyNothing(password).then(() => undefined);
    return (await verifyPassword(password, u.Password)) ? u : undefined;
  }

  private lookup(name: string): UserRecord | undefined {
    const n = name.toLowerCase();
    return this.users.find((u) => u.Name.toLowerCase() === n);
  }

  private find(name: string): UserRecord {
    const u = this.lookup(name);
    if (!u) throw new VmhostError('NOT_FOUND', `No user '${name}' (Get-VMHostUser lists them)`, { user: name });
    return u;
  }

  /** One change at a time: computed from the current list, saved, then made current. */
  private change<T>(fn: (users: UserRecord[]) => Promise<{ users: UserRecord[]; result: T }>): Promise<T> {
    const run = this.chain.then(async () => {
      const next = await fn(this.users);
      await writeFileAtomic(this.path, JSON.stringify({ Users: next.users }, null, 2) + '\n', 0o600);
      this.users = next.users;
      for (const fn of this.listeners) fn();
      return next.result;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}

function view(u: UserRecord): UserView {
  return {
    Name: u.Name, Role: u.Role, HasPassword: u.Password !== undefined,
    Tokens: u.Tokens.map((t) => ({ Id: t.Id, Created: t.Created })), VMConnectAccess: u.VMConnectAccess, Created: u.Created,
  };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
