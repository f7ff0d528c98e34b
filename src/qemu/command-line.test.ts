import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmhostError } from '../common/index.ts';
import { buildQemuArgv, numaLayout, optValue } from './command-line.ts';
import type { QemuVmSpec } from './vm-spec.ts';

const MiB = 1024 * 1024;
const paths = {
  qmpSocket: '/run/vm/q.sock', serialSocket: '/run/vm/s.sock', serialLog: '/var/vm/serial.log',
  vncSocket: '/run/vm/vnc.sock', agentSocket: '/run/vm/agent.sock', pidFile: '/run/vm/qemu.pid',
};

function gen1(over: Partial<QemuVmSpec> = {}): QemuVmSpec {
  return {
    generation: 1, name: 'web1', uuid: '6f1c2a0e-4a7b-4c1e-9d7a-0123456789ab', processorCount: 2,
    memoryStartupBytes: 512 * MiB, accelerator: 'tcg', paths,
    disks: [
      { id: 'd0', bus: 'ide', source: { kind: 'nbd', socketPath: '/run/nbd/d0.sock', exportName: 'd0' }, controllerNumber: 0, controllerLocation: 0, bootIndex: 1 },
      { id: 'dvd', bus: 'ide', media: 'cdrom', readOnly: true, source: { kind: 'file', path: '/iso/a,b.iso' }, controllerNumber: 1, controllerLocation: 0 },
    ],
    nics: [
      { id: 'n0', mac: '52:54:00:AA:BB:01', model: 'legacy', streamSocketPath: '/run/sw/p1.sock' },
      { id: 'n1', mac: '52:54:00:aa:bb:02', model: 'virtio', streamSocketPath: '/run/sw/p2.sock' },
    ],
    ...over,
  };
}

function gen2(over: Partial<QemuVmSpec> = {}): QemuVmSpec {
  return {
    generation: 2, name: 'db1', uuid: '6f1c2a0e-4a7b-4c1e-9d7a-0123456789ac', processorCount: 4,
    topology: { sockets: 2, cores: 2, threads: 1 }, memoryStartupBytes: 1024 * MiB, accelerator: 'kvm', paths,
    firmware: { codePath: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsPath: '/var/vm/db1_VARS.fd', secureBoot: false },
    disks: [
      { id: 'os', bus: 'scsi', source: { kind: 'nbd', socketPath: '/run/nbd/os.sock', exportName: 'os' }, controllerNumber: 0, controllerLocation: 0 },
      { id: 'data', bus: 'scsi', readOnly: true, source: { kind: 'nbd', socketPath: '/run/nbd/data.sock', exportName: 'data' }, controllerNumber: 1, controllerLocation: 3 },
      { id: 'fast', bus: 'virtio', source: { kind: 'file', path: '/img/fast.qcow2', format: 'qcow2' } },
    ],
    nics: [{ id: 'n0', mac: '52:54:00:00:00:10', model: 'virtio', streamSocketPath: '/run/sw/p3.sock' }],
    kernelBoot: { kernelPath: '/g/vmlinuz', initrdPath: '/g/initrd.gz', append: 'console=ttyS0 quiet' },
    ...over,
  };
}

/** The value following `flag`, for every occurrence. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

function assertInvalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isVmhostError(e, 'QEMU_SPEC_INVALID') && re.test(e.message));
}

test('generation 1: i440fx + SeaBIOS, IDE, legacy e1000, identity and sockets', () => {
  const a = buildQemuArgv(gen1());
  assert.deepEqual(values(a, '-machine'), ['pc']);
  assert.deepEqual(values(a, '-accel'), ['tcg']);
  assert.deepEqual(values(a, '-cpu'), ['qemu64']);
  assert.deepEqual(values(a, '-smp'), ['cpus=2,sockets=2,cores=1,threads=1']);
  assert.deepEqual(values(a, '-m'), ['524292K'], 'TCG: 4 KiB over the 512 MiB (the migration dirty tracking pad)');
  assert.deepEqual(values(a, '-name'), ['guest=web1,debug-threads=on']);
  assert.deepEqual(values(a, '-uuid'), ['6f1c2a0e-4a7b-4c1e-9d7a-0123456789ab']);
  assert.ok(a.includes('-nodefaults') && a.includes('-no-user-config'));
  assert.ok(!a.includes('-no-shutdown'), 'a guest power-off ends QEMU');
  assert.ok(!a.includes('-drive'), 'no pflash on generation 1');
  assert.deepEqual(values(a, '-pidfile'), ['/run/vm/qemu.pid']);
  assert.deepEqual(values(a, '-vnc'), ['unix:/run/vm/vnc.sock']);
  assert.deepEqual(values(a, '-mon'), ['chardev=qmp,mode=control']);
  assert.deepEqual(values(a, '-chardev'), [
    'socket,id=qmp,path=/run/vm/q.sock,server=on,wait=off',
    'socket,id=serial0,path=/run/vm/s.sock,server=on,wait=off,logfile=/var/vm/serial.log,logappend=on',
    'socket,id=agent0,path=/run/vm/agent.sock,server=on,wait=off',
  ]);
  const dev = values(a, '-device');
  assert.deepEqual(dev, [
    'isa-serial,chardev=serial0,id=com1',
    'VGA,id=video0',
    'virtio-serial-pci,id=vserial0',
    'virtserialport,bus=vserial0.0,chardev=agent0,name=org.vmhost.agent.0',
    'virtio-balloon-pci,id=balloon0',
    'ide-hd,drive=d0-blk,id=d0,bus=ide.0,unit=0,bootindex=1,werror=stop,rerror=stop',
    'ide-cd,drive=dvd-blk,id=dvd,bus=ide.1,unit=0',
    'e1000,netdev=n0-net,mac=52:54:00:aa:bb:01,id=n0',
    'virtio-net-pci,netdev=n1-net,mac=52:54:00:aa:bb:02,id=n1',
  ]);
  assert.deepEqual(values(a, '-blockdev'), [
    'driver=nbd,node-name=d0-nbd0,server.type=unix,server.path=/run/nbd/d0.sock,export=d0,reconnect-delay=20,read-only=off',
    'driver=raw,node-name=d0-blk,file=d0-nbd0,read-only=off',
    'driver=file,node-name=dvd-blk-file,filename=/iso/a,,b.iso,read-only=on',
    'driver=raw,node-name=dvd-blk,file=dvd-blk-file,read-only=on',
  ]);
  assert.deepEqual(values(a, '-netdev'), [
    'stream,id=n0-net,server=off,addr.type=unix,addr.path=/run/sw/p1.sock',
    'stream,id=n1-net,server=off,addr.type=unix,addr.path=/run/sw/p2.sock',
  ]);
  assert.ok(!a.includes('-S') && !a.includes('-incoming'));
});

test('generation 2: q35 + OVMF pflash, virtio-scsi per controller, no legacy devices, kernel boot', () => {
  const a = buildQemuArgv(gen2(), { startPaused: true, incoming: "exec:cat '/s/state'" });
  assert.deepEqual(values(a, '-machine'), ['q35']);
  assert.deepEqual(values(a, '-cpu'), ['host']);
  assert.deepEqual(values(a, '-smp'), ['cpus=4,sockets=2,cores=2,threads=1']);
  assert.deepEqual(values(a, '-drive'), [
    'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    'if=pflash,format=raw,unit=1,file=/var/vm/db1_VARS.fd',
  ]);
  assert.deepEqual(values(a, '-global'), []);
  const dev = values(a, '-device');
  assert.ok(dev.includes('bochs-display,id=video0'));
  assert.ok(!dev.some((d) => /^(VGA|ide-|e1000|rtl8139)/.test(d)), dev.join(' '));
  assert.ok(dev.includes('virtio-scsi-pci,id=scsi0') && dev.includes('virtio-scsi-pci,id=scsi1'));
  // NBD disks stop the VM on an I/O error instead of failing the guest's request.
  assert.ok(dev.includes('scsi-hd,drive=os-blk,id=os,bus=scsi0.0,channel=0,scsi-id=0,lun=0,werror=stop,rerror=stop'));
  assert.ok(dev.includes('scsi-hd,drive=data-blk,id=data,bus=scsi1.0,channel=0,scsi-id=3,lun=0,werror=stop,rerror=stop'));
  assert.ok(dev.includes('virtio-blk-pci,drive=fast-blk,id=fast'));
  assert.ok(values(a, '-blockdev').includes('driver=qcow2,node-name=fast-blk,file=fast-blk-file,read-only=off'));
  assert.ok(values(a, '-blockdev').some((b) => b.includes('node-name=data-blk') && b.endsWith('read-only=on')));
  assert.deepEqual(values(a, '-kernel'), ['/g/vmlinuz']);
  assert.deepEqual(values(a, '-initrd'), ['/g/initrd.gz']);
  assert.deepEqual(values(a, '-append'), ['console=ttyS0 quiet']);
  assert.ok(a.includes('-S'));
  assert.deepEqual(values(a, '-incoming'), ["exec:cat '/s/state'"]);
  // Controllers come before the disks that sit on them.
  assert.ok(a.indexOf('virtio-scsi-pci,id=scsi1') < a.findIndex((x) => x.startsWith('scsi-hd,drive=data-blk')));
});

test('generation 2 secure boot: SMM on, secure pflash', () => {
  const a = buildQemuArgv(gen2({ firmware: { codePath: '/o/OVMF_CODE_4M.ms.fd', varsPath: '/v.fd', secureBoot: true } }));
  assert.deepEqual(values(a, '-machine'), ['q35,smm=on']);
  assert.deepEqual(values(a, '-global'), ['driver=cfi.pflash01,property=secure,value=on']);
  assert.equal(values(a, '-drive')[0], 'if=pflash,format=raw,unit=0,readonly=on,file=/o/OVMF_CODE_4M.ms.fd');
});

test('generation 2 refuses IDE disks and legacy NICs with a clear error', () => {
  assertInvalid(() => buildQemuArgv(gen2({ disks: [{ id: 'x', bus: 'ide', source: { kind: 'file', path: '/x' } }] })),
    /generation 2 VMs have no IDE controller/);
  assertInvalid(() => buildQemuArgv(gen2({ nics: [{ id: 'n', mac: '52:54:00:00:00:01', model: 'legacy', streamSocketPath: '/s' }] })),
    /generation 2 VMs have no legacy network adapter/);
});

test('NUMA: CPUs and memory split evenly, remainder on the last node', () => {
  assert.deepEqual(numaLayout(4, 1024, 2), [{ firstCpu: 0, lastCpu: 1, memoryMiB: 512 }, { firstCpu: 2, lastCpu: 3, memoryMiB: 512 }]);
  assert.deepEqual(numaLayout(3, 1000, 3), [
    { firstCpu: 0, lastCpu: 0, memoryMiB: 333 }, { firstCpu: 1, lastCpu: 1, memoryMiB: 333 }, { firstCpu: 2, lastCpu: 2, memoryMiB: 334 },
  ]);
  const a = buildQemuArgv(gen2({ processorCount: 6, topology: { sockets: 2, cores: 3, threads: 1 }, memoryStartupBytes: 1536 * MiB, numa: { count: 2 } }));
  assert.deepEqual(values(a, '-object'), ['memory-backend-ram,id=ram-node0,size=768M', 'memory-backend-ram,id=ram-node1,size=768M']);
  assert.deepEqual(values(a, '-numa'), ['node,nodeid=0,cpus=0-2,memdev=ram-node0', 'node,nodeid=1,cpus=3-5,memdev=ram-node1']);
  assert.deepEqual(values(a, '-m'), ['1536M']);
  const b = buildQemuArgv(gen2({ numa: { count: 2, memoryMiBPerNode: [256, 768] } }));
  assert.deepEqual(values(b, '-object'), ['memory-backend-ram,id=ram-node0,size=256M', 'memory-backend-ram,id=ram-node1,size=768M']);
  assertInvalid(() => buildQemuArgv(gen2({ numa: { count: 2, memoryMiBPerNode: [256, 256] } })), /summing to 1024/);
  assertInvalid(() => buildQemuArgv(gen2({ numa: { count: 5 } })), /NUMA node count/);
});

test('TCG: every boot RAM block 4 KiB over a multiple of 256 KiB (QEMU 7.2 tracks its writes for migration only then); KVM: as asked', () => {
  const dyn = buildQemuArgv(gen1({ memoryStartupBytes: 128 * MiB, virtioMem: [{ id: 'vmem0', sizeBytes: 896 * MiB, requestedBytes: 0 }] }));
  assert.deepEqual(values(dyn, '-m'), ['131076K,maxmem=1025M'], 'maxmem leaves the virtio-mem region whole');
  const numa = buildQemuArgv(gen1({ processorCount: 2, memoryStartupBytes: 1024 * MiB, numa: { count: 2 } }));
  assert.deepEqual(values(numa, '-object'), ['memory-backend-ram,id=ram-node0,size=524292K', 'memory-backend-ram,id=ram-node1,size=524292K']);
  assert.deepEqual(values(numa, '-m'), ['1048584K'], 'the nodes sum to -m');
  assert.deepEqual(values(buildQemuArgv(gen2()), '-m'), ['1024M']);
});

test('dynamic memory: maxmem covers the virtio-mem regions; RAM reserves nothing until plugged, a paging file is a shared mapping', () => {
  const a = buildQemuArgv(gen2({ memoryStartupBytes: 128 * MiB, balloonDeflateOnOom: true, virtioMem: [
    { id: 'vmem0', sizeBytes: 896 * MiB, requestedBytes: 64 * MiB },
    { id: 'vmemsp', sizeBytes: 64 * MiB, requestedBytes: 64 * MiB, file: '/vms/a,b/x.smartpaging' },
  ] }));
  assert.deepEqual(values(a, '-m'), ['128M,maxmem=1088M']);
  assert.deepEqual(values(a, '-object'), [
    `memory-backend-ram,id=vmem0-mem,size=${896 * MiB},reserve=off`,
    `memory-backend-file,id=vmemsp-mem,size=${64 * MiB},mem-path=/vms/a,,b/x.smartpaging,share=on`,
  ]);
  assert.ok(values(a, '-device').includes(`virtio-mem-pci,id=vmem0,memdev=vmem0-mem,requested-size=${64 * MiB},block-size=${2 * MiB}`));
  assert.ok(values(a, '-device').includes('virtio-balloon-pci,id=balloon0,deflate-on-oom=on'));
  assert.deepEqual(values(buildQemuArgv(gen1()), '-m'), ['524292K'], 'static memory: no maxmem');
  assert.ok(values(buildQemuArgv(gen1()), '-device').includes('virtio-balloon-pci,id=balloon0'), 'static memory: the balloon as before');
  assertInvalid(() => buildQemuArgv(gen1({ virtioMem: [{ id: 'vmem0', sizeBytes: 3 * MiB, requestedBytes: 0 }] })), /whole 2 MiB blocks/);
  assertInvalid(() => buildQemuArgv(gen1({ virtioMem: [{ id: 'vmem0', sizeBytes: 2 * MiB, requestedBytes: 4 * MiB }] })), /requested ≤ size/);
  assertInvalid(() => buildQemuArgv(gen2({ numa: { count: 2 }, virtioMem: [{ id: 'vmem0', sizeBytes: 2 * MiB, requestedBytes: 0 }] })), /exclude each other/);
});

test('invalid specs are refused with the offending setting named', () => {
  assertInvalid(() => buildQemuArgv(gen1({ memoryStartupBytes: 512 * MiB + 4096 })), /whole number of MiB/);
  assertInvalid(() => buildQemuArgv(gen1({ topology: { sockets: 1, cores: 3, threads: 1 } })), /does not multiply/);
  assertInvalid(() => buildQemuArgv(gen1({ uuid: 'nope' })), /not a UUID/);
  assertInvalid(() => buildQemuArgv(gen2({ firmware: undefined })), /needs UEFI firmware/);
  assertInvalid(() => buildQemuArgv(gen1({ firmware: { codePath: '/c', varsPath: '/v', secureBoot: false } })), /generation 2 only/);
  assertInvalid(() => buildQemuArgv(gen1({ nics: [{ id: 'n', mac: '53:54:00:00:00:01', model: 'virtio', streamSocketPath: '/s' }] })), /multicast/);
  assertInvalid(() => buildQemuArgv(gen1({ nics: [{ id: 'n', mac: 'zz', model: 'virtio', streamSocketPath: '/s' }] })), /bad MAC/);
  assertInvalid(() => buildQemuArgv(gen1({ disks: [
    { id: 'a', bus: 'ide', source: { kind: 'file', path: '/a' } }, { id: 'b', bus: 'ide', source: { kind: 'file', path: '/b' } },
  ] })), /IDE 0:0 is already used/);
  assertInvalid(() => buildQemuArgv(gen1({ disks: [{ id: 'a', bus: 'ide', readOnly: true, source: { kind: 'file', path: '/a' } }] })), /cannot be read-only/);
  assertInvalid(() => buildQemuArgv(gen1({ disks: [{ id: 'a b', bus: 'virtio', source: { kind: 'file', path: '/a' } }] })), /device id/);
  assertInvalid(() => buildQemuArgv(gen1({ nics: [{ id: 'd0', mac: '52:54:00:00:00:01', model: 'virtio', streamSocketPath: '/s' }] })), /duplicate device id/);
  assertInvalid(() => buildQemuArgv(gen1({ paths: { ...paths, qmpSocket: `/${'x'.repeat(120)}` } })), /unix socket limit/);
});

test('option values escape commas; names with commas stay one option', () => {
  assert.equal(optValue('a,b,,c'), 'a,,b,,,,c');
  assert.deepEqual(values(buildQemuArgv(gen1({ name: 'a,b' })), '-name'), ['guest=a,,b,debug-threads=on']);
});

test('firmware boot: strict boot order when a device has a bootindex; empty DVD trays; the firmware debug console', () => {
  const withIndex = buildQemuArgv(gen1({ paths: { ...paths, firmwareLog: '/var/vm/firmware.log' } }));
  assert.deepEqual(values(withIndex, '-boot'), ['strict=on'], 'only the listed devices are tried, as in Hyper-V');
  assert.ok(values(withIndex, '-chardev').includes('file,id=fwlog,path=/var/vm/firmware.log'));
  assert.ok(values(withIndex, '-device').includes('isa-debugcon,iobase=0x402,chardev=fwlog'));
  const kernelBoot = buildQemuArgv(gen2());
  assert.deepEqual(values(kernelBoot, '-boot'), [], 'no bootindex, no strict order');
  assert.ok(!values(kernelBoot, '-device').some((d) => d.startsWith('isa-debugcon')), 'no firmware log unless asked');
  assert.deepEqual(values(buildQemuArgv(gen2(), { bootIndexedExtras: true }), '-boot'), ['strict=on'], 'NICs on hubs carry the bootindex');

  const empty = buildQemuArgv(gen2({ disks: [{ id: 'cd0', bus: 'scsi', media: 'cdrom', readOnly: true, source: { kind: 'empty' }, controllerNumber: 0, controllerLocation: 1, bootIndex: 2 }] }));
  assert.ok(values(empty, '-device').includes('scsi-cd,id=cd0,bus=scsi0.0,channel=0,scsi-id=1,lun=0,bootindex=2'));
  assert.ok(!values(empty, '-blockdev').some((b) => b.includes('cd0')), 'an empty tray has no block node');
  const emptyIde = buildQemuArgv(gen1({ disks: [{ id: 'cd1', bus: 'ide', media: 'cdrom', readOnly: true, source: { kind: 'empty' }, controllerNumber: 1, controllerLocation: 0 }] }));
  assert.ok(values(emptyIde, '-device').includes('ide-cd,id=cd1,bus=ide.1,unit=0'));
  assertInvalid(() => buildQemuArgv(gen2({ disks: [{ id: 'x', bus: 'scsi', source: { kind: 'empty' } }] })), /only a DVD drive can be empty/);
});
