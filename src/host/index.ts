export { Host, type NewVmParams, type SetVmParams, type StopParams, type InvokeResult, type IntegrationServiceView } from './host.ts';
export type { Job, JobState } from './jobs.ts';
export type { HostEvent } from './events.ts';
export type { VmView, HeartbeatStatus } from './vm-view.ts';
export type { VmState } from './vm-state.ts';
export { writeFileAtomic } from './atomic-file.ts';
export { loadNetAdapters, parseNetAdapter, NET_ADAPTER_FLAG } from './net-adapters.ts';
export { PRIVATE_UMASK, privatizeTree } from './private-files.ts';
export { ensurePrivateDir, shortSocketRoot, usesShortSocketRoot } from './runtime-dir.ts';
