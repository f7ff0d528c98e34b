// guest/: integration services over virtio-serial (layer 3; imports only common/).
export { AgentClient, AGENT_PORT_NAME, type AgentClientOptions, type AgentClientEvents, type ExecOptions, type ExecResult, type WriteFileOptions } from './agent-client.ts';
export type { AgentInfo, PingData, GuestKvp, GuestInterface, SetTimeData, MemInfoData, FreezeData, ThawData } from './protocol.ts';
export { ensureGuestImage, ensureBootIso, type GuestImage } from './image.ts';
export { ensureDebianImage, type DebianImage } from './debian-image.ts';
export { ensureEspImages, type EspImages } from './esp-images.ts';
export { ensureGuestIso, type GuestIso } from './guest-iso.ts';
export { agentChardevArgs } from './qemu-args.ts';
export { heartbeatStatus, type HeartbeatStatus, type HeartbeatTimes } from './heartbeat.ts';
