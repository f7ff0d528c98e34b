// The legality table (power and device actions alike), its one wording, the transitions, and
// the rule that a VM's state changes only in vm-state.ts with the VM lock held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVmhostError } from '../common/index.ts';
import { VmLock } from './vm-lock.ts';
import {
  VM_ACTIONS, VM_STATES, VmStateMachine, assertLegal, canTransition, isLegal, unavailableActions, whyIllegal,
  type VmAction, type VmState,
} from './vm-state.ts';

const legalIn = (action: VmAction) => VM_STATES.filter((s) => isLegal(action, s));

test('power actions keep Hyper-V\'s rules', () => {
  assert.deepEqual(legalIn('Start'), ['Off', 'Saved']);
  assert.deepEqual(legalIn('Stop'), ['Running']);
  assert.deepEqual(legalIn('Save'), ['Running', 'Paused']);
  assert.deepEqual(legalIn('Resume'), ['Paused']);
  assert.deepEqual(legalIn('TurnOff'), ['Starting', 'Running', 'Paused', 'Saving', 'Stopping']);
  assert.deepEqual(legalIn('SetHardware'), ['Off']);
});

test('device actions are in the table with 2012 R2\'s rules', () => {
  // IDE has no hot-plug; SCSI disks come and go while the VM runs (not while paused or saved).
  assert.deepEqual(legalIn('IdeHardDrive'), ['Off']);
  assert.deepEqual(legalIn('ScsiHardDrive'), ['Off', 'Running']);
  assert.deepEqual(legalIn('SetHardDrivePath'), ['Off']);
  assert.deepEqual(legalIn('SetHardDriveQoS'), VM_STATES);
  assert.deepEqual(legalIn('AddDvdDrive'), ['Off']);
  assert.deepEqual(legalIn('RemoveDvdDrive'), ['Off']);
  assert.deepEqual(legalIn('SetDvdMedia'), ['Off', 'Running']);
  // Add-/Remove-VMNetworkAdapter only while off; Connect-/Disconnect- while running too.
  assert.deepEqual(legalIn('AddNetworkAdapter'), ['Off']);
  assert.deepEqual(legalIn('RemoveNetworkAdapter'), ['Off']);
  assert.deepEqual(legalIn('ConnectNetworkAdapter'), VM_STATES);
  assert.deepEqual(legalIn('SetControllers'), ['Off']);
  assert.deepEqual(legalIn('SetBootOrder'), VM_STATES);
});

test('a refusal has one wording: action, VM, state, when it is allowed (and Hyper-V\'s note)', () => {
  assert.equal(whyIllegal('Start', 'Running', 'web1'), "Cannot Start VM 'web1' because it is Running (allowed when: Off, Saved)");
  assert.equal(whyIllegal('AddNetworkAdapter', 'Running', 'web1'),
    "Cannot add a network adapter to VM 'web1' because it is Running (allowed when: Off): network adapters can be added only while the VM is off");
  assert.equal(whyIllegal('IdeHardDrive', 'Running', 'web1'),
    "Cannot add or remove an IDE hard drive on VM 'web1' because it is Running (allowed when: Off): IDE drives can only be changed while the VM is off (SCSI drives hot-plug while it runs)");
  assert.equal(whyIllegal('ScsiHardDrive', 'Running', 'web1'), undefined);
  assert.throws(() => assertLegal('ScsiHardDrive', 'Paused', 'web1'), (e: unknown) =>
    isVmhostError(e) && e.code === 'INVALID_STATE' && e.message === whyIllegal('ScsiHardDrive', 'Paused', 'web1')
    && (e.context as { action: string }).action === 'ScsiHardDrive');
});

test('unavailableActions lists exactly the refused actions, each with its refusal', () => {
  for (const state of VM_STATES) {
    const out = unavailableActions(state, 'v');
    for (const a of VM_ACTIONS) assert.equal(out[a], whyIllegal(a, state, 'v'), `${a} in ${state}`);
  }
  assert.deepEqual(Object.keys(unavailableActions('Off', 'v')).sort(), ['Debug', 'CopyFile', 'InvokeCommand', 'Move', 'RemoveSavedState', 'Restart', 'Resume', 'Save', 'Stop', 'Suspend', 'TurnOff'].sort());
});

test('transitions: every action\'s path, a failure\'s way back, an exit from any live state', () => {
  const paths: [VmState, VmState][] = [
    ['Off', 'Starting'], ['Starting', 'Running'], ['Starting', 'Off'], ['Saved', 'Starting'], ['Starting', 'Saved'],
    ['Running', 'Stopping'], ['Stopping', 'Off'], ['Stopping', 'Running'], ['Running', 'Paused'], ['Paused', 'Running'],
    ['Running', 'Saving'], ['Paused', 'Saving'], ['Saving', 'Saved'], ['Saving', 'Running'], ['Saved', 'Off'],
    ['Running', 'Off'], ['Paused', 'Off'], ['Off', 'Running'], ['Off', 'Paused'], ['Off', 'Saved'],
    // Move-VM: a failed move runs on here, an unknown outcome pauses, a moved VM leaves (Off, then gone).
    ['Running', 'Migrating'], ['Migrating', 'Running'], ['Migrating', 'Paused'], ['Migrating', 'Off'],
  ];
  for (const [from, to] of paths) assert.ok(canTransition(from, to), `${from} -> ${to}`);
  for (const [from, to] of [['Saved', 'Running'], ['Saved', 'Paused'], ['Stopping', 'Paused'], ['Paused', 'Stopping'], ['Starting', 'Stopping'], ['Paused', 'Migrating'], ['Migrating', 'Saving']] as const) {
    assert.equal(canTransition(from, to), false, `${from} -> ${to}`);
  }
});

test('transition() takes the proof the VM lock hands out, and refuses an impossible change', async () => {
  const lock = new VmLock();
  const m = new VmStateMachine(() => 'vm1', lock);
  // @ts-expect-error: without the lock's proof a state change does not typecheck...
  assert.throws(() => m.transition({}, 'Starting'), /outside its lock/);
  // ...and a proof kept after its holder ended (or another VM's) is refused at run time.
  const stale = await lock.run(async (held) => held);
  assert.throws(() => m.transition(stale, 'Starting'), /outside its lock/);
  await new VmLock().run(async (other) => assert.throws(() => m.transition(other, 'Starting'), /outside its lock/));
  assert.equal(m.state, 'Off');
  await lock.run(async (held) => {
    m.transition(held, 'Starting');
    m.transition(held, 'Running');
    m.transition(held, 'Running'); // staying put is no change
  });
  assert.equal(m.state, 'Running');
  await assert.rejects(lock.run(async (held) => m.transition(held, 'Saved')), (e: unknown) =>
    isVmhostError(e) && e.code === 'VM_STATE_TRANSITION' && /VM 'vm1' cannot go from Running to Saved/.test(e.message));
  assert.equal(m.state, 'Running');
});

test('the VM lock runs holders one after the other, in order', async () => {
  const lock = new VmLock();
  const m = new VmStateMachine(() => 'vm1', lock);
  const seen: VmState[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const first = lock.run(async (held) => { m.transition(held, 'Starting'); await gate; m.transition(held, 'Running'); seen.push(m.state); });
  const second = lock.run(async (held) => { seen.push(m.state); m.transition(held, 'Stopping'); });
  release();
  await Promise.all([first, second]);
  assert.deepEqual(seen, ['Running', 'Running']);
  assert.equal(m.state, 'Stopping');
});

const srcRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.tsx?$/.test(e) && !e.endsWith('.test.ts')) yield p;
  }
}

test('no VM state is assigned, and no VM state is refused, outside vm-state.ts', () => {
  const assigned: string[] = [];
  const refused: string[] = [];
  for (const f of sources(srcRoot)) {
    const rel = relative(srcRoot, f);
    if (rel === join('host', 'vm-state.ts')) continue;
    for (const [i, line] of readFileSync(f, 'utf8').split('\n').entries()) {
      if (/\.state\s*=[^=]/.test(line)) assigned.push(`${rel}:${i + 1}: ${line.trim()}`);
      // A state check of its own (`e.state !== 'Off'` → INVALID_STATE) bypasses the table.
      if (/INVALID_STATE/.test(line) && /\be\.state\b/.test(line)) refused.push(`${rel}:${i + 1}: ${line.trim()}`);
    }
  }
  assert.deepEqual(assigned, [], 'state assigned outside VmStateMachine.transition');
  assert.deepEqual(refused, [], 'state refused outside the legality table (use assertLegal)');
});
