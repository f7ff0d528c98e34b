// Wire format of the vmhost guest agent (see PROTOCOL.md): one JSON object per line.
// Pure: message types, encoding, and a line splitter; no sockets.

/** Sent by the agent when it starts and whenever it sees a host (re)connect. */
export interface AgentInfo {
  agentVersion: string;
  hostname: string;
  /** `uname -r` of the guest. */
  kernel: string;
  /** Guest time since boot (CLOCK_BOOTTIME) when the message was sent. */
  uptimeMs: number;
}

export interface PingData extends AgentInfo {
  /** Guest wall clock (ms since the epoch): what Time Synchronization compares with the host's. */
  timeMs: number;
}

/** Key/value exchange items, named as Hyper-V's KVP "guest intrinsic" items. */
export interface GuestKvp {
  FullyQualifiedDomainName: string;
  OSName: string;
  OSVersion: string;
  ProcessorArchitecture: string;
  IntegrationServicesVersion: string;
  NetworkAddressIPv4: string[];
  NetworkAddressIPv6: string[];
  /** Per interface (loopback left out): lets the host map addresses to the adapter with that MAC. Absent from older agents. */
  NetworkInterfaces?: GuestInterface[];
}

export interface GuestInterface {
  Name: string;
  /** Lower-case colon form, as the guest kernel reports it. */
  MacAddress: string;
  IPv4: string[];
  IPv6: string[];
}

/** meminfo reply: the guest's memory as it sees it (dynamic memory's pressure report). Absent from agents before it: UNKNOWN_OP. */
export interface MemInfoData {
  /** /proc/meminfo MemTotal and MemAvailable, in bytes. */
  memTotalBytes: number;
  memAvailableBytes: number;
  /** /proc/pressure/memory's avg10 (% of time some / all tasks stalled on memory), when the kernel has PSI. */
  psiSomeAvg10?: number;
  psiFullAvg10?: number;
}

/** exec reply as sent (stdout/stderr base64). */
export interface ExecData {
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  truncated: boolean;
  stdout: string;
  stderr: string;
}

export type AgentRequest =
  | { id: number; op: 'ping' }
  | { id: number; op: 'kvp' }
  | { id: number; op: 'meminfo' }
  | { id: number; op: 'shutdown'; reboot?: boolean }
  | { id: number; op: 'exec'; script: string; timeoutMs: number }
  | { id: number; op: 'settime'; timeMs: number }
  | { id: number; op: 'freeze'; timeoutMs: number }
  | { id: number; op: 'thaw' }
  | ({ id: number; op: 'writefile' } & WriteFileChunk);

/** freeze reply: the mount points frozen (children first); the agent thaws them itself after `timeoutMs`. */
export interface FreezeData {
  timeoutMs: number;
  frozen: string[];
}

/** thaw reply: how many file systems this thaw released (0: none was frozen — the agent's timeout came first). */
export interface ThawData {
  thawed: number;
}

/** settime reply: the guest clock just before and just after it was set. */
export interface SetTimeData {
  previousTimeMs: number;
  timeMs: number;
}

/** One writefile request (PROTOCOL.md); `abort` alone removes the temp file. */
export type WriteFileChunk =
  | { path: string; transfer: string; offset: number; data: string; createFullPath?: boolean; overwrite?: boolean; final?: boolean }
  | { path: string; transfer: string; abort: true };

export interface WriteFileData {
  size: number;
  final: boolean;
}

export interface AgentErrorBody { code: string; message: string }

export type AgentMessage =
  | { kind: 'reply'; id: number; ok: true; data: unknown }
  | { kind: 'reply'; id: number; ok: false; error: AgentErrorBody }
  | { kind: 'event'; event: string; body: Record<string, unknown> }
  /** Valid JSON that is neither: e.g. an error about a line without an id. */
  | { kind: 'other'; body: unknown };

export function encodeRequest(req: AgentRequest): string {
  return JSON.stringify(req) + '\n';
}

/** Parses one line; throws SyntaxError when it is not JSON. */
export function decodeLine(line: string): AgentMessage {
  const body: unknown = JSON.parse(line);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { kind: 'other', body };
  const o = body as Record<string, unknown>;
  if (typeof o.event === 'string') return { kind: 'event', event: o.event, body: o };
  if (typeof o.id === 'number' && o.ok === true) return { kind: 'reply', id: o.id, ok: true, data: o.data };
  if (typeof o.id === 'number' && o.ok === false) {
    const e = (o.error ?? {}) as Partial<AgentErrorBody>;
    return { kind: 'reply', id: o.id, ok: false, error: { code: String(e.code ?? 'UNKNOWN'), message: String(e.message ?? '') } };
  }
  return { kind: 'other', body };
}

/**
 * Splits a byte stream into lines. A line longer than `maxBytes` is dropped whole
 * (reported through `onOverflow`) instead of growing the buffer without bound.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(private readonly maxBytes: number, private readonly onOverflow: () => void = () => {}) {}

  /** Feeds a chunk; returns the complete lines it finished (without the newline). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.skipping) {
        this.skipping = false;
      } else if (this.size + piece.length > this.maxBytes) {
        this.onOverflow();
      } else {
        const line = Buffer.concat([...this.parts, piece]).toString('utf8');
        const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
        if (trimmed.length > 0) lines.push(trimmed);
      }
      this.parts = [];
      this.size = 0;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0 && !this.skipping) {
      if (this.size + rest.length > this.maxBytes) {
        this.parts = [];
        this.size = 0;
        this.skipping = true;
        this.onOverflow();
      } else {
        this.parts.push(Buffer.from(rest));
        this.size += rest.length;
      }
    }
    return lines;
  }

  /** Forgets a partial line (after a disconnect). */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.skipping = false;
  }
}
