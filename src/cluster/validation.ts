// Test-Cluster: a validation report of the cluster as every node sees it, Pass / Warning / Fail
// per test. The asking node writes a probe file in the shared folder and a request key; every
// node (ClusterOps, cluster-ops.ts) answers with its own findings — each etcd member it is
// configured with, reached from there and healthy; the probe read there; a file of its own
// written, read back and removed; its switches; its vmhost version; its wall clock — and the
// asking node compares them. The clock offset of a node is its clock at the request bracketed by
// the asking node's clock before the request and after the answer: offset ± half that round trip.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../host/index.ts';
import type { ClusterNode } from './cluster-node.ts';
import { nodeState } from './keys.ts';
import {
  VALIDATE_PREFIX, validateReportKey, validateRequestKey,
  type EtcdEndpointCheck, type ValidationReport, type ValidationRequest,
} from './ops-keys.ts';

export type ValidationResult = 'Pass' | 'Warning' | 'Fail';
export interface ValidationTest { Category: string; Test: string; Node: string; Result: ValidationResult; Detail: string }
export interface ValidationView { Cluster: string; Result: ValidationResult; StartTime: string; Tests: ValidationTest[] }

/** How long the asking node waits for every node's answer. */
const ANSWER_MS = 10_000;
/** Clock offsets: under SKEW_WARN_MS Pass; under SKEW_FAIL_MS (Kerberos's tolerance, which a Windows cluster lives by) Warning. */
const SKEW_WARN_MS = 2_000;
const SKEW_FAIL_MS = 300_000;
const PROBE_DIR = '.vmhost-validate';

/** One etcd member's health as this node reaches it (its own status call: the client fails over, a test must not). */
async function checkEndpoint(endpoint: string): Promise<EtcdEndpointCheck> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(3000) });
    const j = (await res.json()) as { version?: string; leader?: string; errors?: string[] };
    const ms = Math.round(performance.now() - t0);
    const errors = j.errors ?? [];
    const leaderless = !j.leader || j.leader === '0';
    const error = !res.ok ? `HTTP ${res.status}` : leaderless ? 'no leader (the member has no majority)' : errors.length > 0 ? errors.join('; ') : undefined;
    return { Endpoint: endpoint, Healthy: error === undefined, Version: j.version, Leader: j.leader, Ms: ms, ...(error ? { Error: error } : {}) };
  } catch (e) {
    return { Endpoint: endpoint, Healthy: false, Ms: Math.round(performance.now() - t0), Error: (e as Error).message };
  }
}

/** A node's answer to a Test-Cluster request. */
export async function answerValidation(node: ClusterNode, host: Host, req: ValidationRequest): Promise<ValidationReport> {
  const clock = Date.now();
  let visible = false;
  let writable = false;
  let storageError: string | undefined;
  try {
    visible = (await readFile(join(node.storage, req.Probe), 'utf8')) === req.ProbeContent;
    if (!visible) storageError = `the probe ${req.Probe} written by ${req.By} holds something else here: this is not the same folder`;
  } catch (e) {
    storageError = `the probe ${req.Probe} written by ${req.By} is not readable here: ${(e as Error).message}`;
  }
  const mine = join(node.storage, PROBE_DIR, `${req.Run}-${node.name}`);
  const content = randomBytes(16).toString('hex');
  try {
    await mkdir(join(node.storage, PROBE_DIR), { recursive: true });
    await writeFile(mine, content);
    writable = (await readFile(mine, 'utf8')) === content;
  } catch (e) {
    storageError = [storageError, `writing ${mine} failed: ${(e as Error).message}`].filter(Boolean).join('; ');
  } finally {
    await rm(mine, { force: true }).catch(() => undefined);
  }
  return {
    Node: node.name, ClockMs: clock, Version: host.facts.vmhostVersion,
    Etcd: await Promise.all(node.etcd.endpoints.map(checkEndpoint)),
    StorageVisible: visible, StorageWritable: writable, ...(storageError ? { StorageError: storageError } : {}),
    Switches: host.network.switches.list().map((s) => ({ Name: String(s.Name), SwitchType: String(s.SwitchType) })).sort((a, b) => a.Name.localeCompare(b.Name)),
  };
}

const worst = (rs: ValidationResult[]): ValidationResult => (rs.includes('Fail') ? 'Fail' : rs.includes('Warning') ? 'Warning' : 'Pass');

/** Test-Cluster, run by the node the administrator reaches. */
export async function testCluster(node: ClusterNode): Promise<ValidationView> {
  const s = await node.read();
  node.assertMember(s);
  const start = new Date();
  const run = randomUUID();
  const probe = join(PROBE_DIR, run);
  const probeContent = randomBytes(16).toString('hex');
  await mkdir(join(node.storage, PROBE_DIR), { recursive: true });
  await writeFile(join(node.storage, probe), probeContent);
  const reports = new Map<string, { r: ValidationReport; seenAt: number }>();
  const members = [...s.nodes.keys()].sort();
  const up = members.filter((n) => nodeState(s, n) !== 'Down');
  let askedAt = 0;
  try {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), ANSWER_MS);
    askedAt = Date.now();
    const rev = await node.etcd.put(validateRequestKey(run), JSON.stringify({ Run: run, By: node.name, Probe: probe, ProbeContent: probeContent } satisfies ValidationRequest));
    // From the request's revision on: answers written before the watch began are replayed.
    await node.etcd.watch(`${VALIDATE_PREFIX}${run}/report/`, rev + 1, (e) => {
      if (e.type !== 'PUT') return;
      const r = JSON.parse(e.kv.value) as ValidationReport;
      reports.set(r.Node, { r, seenAt: Date.now() });
      if (up.every((n) => reports.has(n))) stop.abort();
    }, stop.signal).finally(() => clearTimeout(timer));
  } finally {
    await rm(join(node.storage, probe), { force: true }).catch(() => undefined);
    for (const k of [validateRequestKey(run), ...members.map((n) => validateReportKey(run, n))]) await node.etcd.delete(k).catch(() => undefined);
  }

  const tests: ValidationTest[] = [];
  const add = (Category: string, Test: string, Node: string, Result: ValidationResult, Detail: string): void => { tests.push({ Category, Test, Node, Result, Detail }); };
  const ref = reports.get(node.name)?.r;
  for (const n of members) {
    const got = reports.get(n);
    if (!got) {
      const why = nodeState(s, n) === 'Down' ? 'the node is Down (no live etcd lease)' : `no answer within ${ANSWER_MS / 1000} s`;
      add('Inventory', 'Node answers', n, 'Fail', why);
      continue;
    }
    const { r, seenAt } = got;
    add('Inventory', 'Node answers', n, 'Pass', `answered in ${seenAt - askedAt} ms`);
    const bad = r.Etcd.filter((e) => !e.Healthy);
    add('Cluster Configuration', 'etcd reachable and healthy', n, bad.length === 0 ? 'Pass' : bad.length < r.Etcd.length ? 'Warning' : 'Fail',
      r.Etcd.map((e) => `${e.Endpoint}: ${e.Healthy ? `healthy, etcd ${e.Version}, ${e.Ms} ms` : `not healthy: ${e.Error}`}`).join('; '));
    // The node's clock at the request lies in [askedAt, seenAt] of ours if both agree: the offset is measured up to half that bracket.
    const mid = (askedAt + seenAt) / 2;
    const offset = r.ClockMs - mid;
    const bound = (seenAt - askedAt) / 2;
    const least = Math.max(0, Math.abs(offset) - bound);
    add('System Configuration', 'Clock offset', n, least < SKEW_WARN_MS ? 'Pass' : least < SKEW_FAIL_MS ? 'Warning' : 'Fail',
      `${offset >= 0 ? '+' : ''}${Math.round(offset)} ms ± ${Math.round(bound)} ms from ${node.name}'s clock`);
    add('Storage', 'Shared folder visible and writable', n, r.StorageVisible && r.StorageWritable ? 'Pass' : 'Fail',
      r.StorageError ?? `${node.storage} (as ${node.name} mounts it): ${node.name}'s probe read, a file written, read back and removed`);
    if (ref) {
      const sw = (x: ValidationReport): string => x.Switches.map((w) => `${w.Name} (${w.SwitchType})`).join(', ') || 'none';
      add('Network', 'Same virtual switches', n, sw(r) === sw(ref) ? 'Pass' : 'Fail',
        sw(r) === sw(ref) ? sw(r) : `${sw(r)} here, ${sw(ref)} on ${node.name}: a VM failing over needs its switch by name`);
      add('System Configuration', 'Same vmhost version', n, r.Version === ref.Version ? 'Pass' : 'Warning',
        r.Version === ref.Version ? r.Version : `${r.Version} here, ${ref.Version} on ${node.name}`);
    }
  }
  return { Cluster: s.config!.Name, Result: worst(tests.map((x) => x.Result)), StartTime: start.toISOString(), Tests: tests };
}
