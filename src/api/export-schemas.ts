// Request shapes of Export-VM, Export-VMSnapshot, Compare-VM and Import-VM.
import { Type, type Static } from '@sinclair/typebox';

const HostPath = (description: string) => Type.String({ minLength: 1, maxLength: 4096, description });

export const ExportBody = Type.Object({
  Path: HostPath('Folder on the host; the export is written to <Path>/<VM name> (which must not exist)'),
}, { additionalProperties: false });
export type ExportBody = Static<typeof ExportBody>;

const ImportOptionFields = {
  Path: HostPath('The exported config: <export>/Virtual Machines/<VMId>.json'),
  Copy: Type.Optional(Type.Boolean({ description: 'Copy the files (default: register the VM where its files are)' })),
  GenerateNewId: Type.Optional(Type.Boolean({ description: 'With Copy: a new VM id (and new device ids, new dynamic MAC addresses)' })),
  VhdDestinationPath: Type.Optional(HostPath('With Copy: folder for the disk files (default <VirtualMachinePath or data dir>/Virtual Hard Disks)')),
  VirtualMachinePath: Type.Optional(HostPath('With Copy: base folder of the copied disks and checkpoints when their own paths are not given (the config itself lives in the data dir)')),
  SnapshotFilePath: Type.Optional(HostPath('With Copy: folder for checkpoint records and memory (default <VirtualMachinePath>/Snapshots, else the VM folder)')),
  VhdSourcePath: Type.Optional(HostPath('Folder to look in for disks and parents not found where the export says')),
  SwitchName: Type.Optional(Type.String({ maxLength: 100, description: 'Adapters whose switch this host lacks connect to this one (\'\' = disconnected)' })),
};

export const CompareBody = Type.Object(ImportOptionFields, { additionalProperties: false });
export type CompareBody = Static<typeof CompareBody>;

// The report is the object Compare-VM answered, edited by the admin; the host validates it again in full.
export const ImportBody = Type.Object({
  ...ImportOptionFields,
  Path: Type.Optional(ImportOptionFields.Path),
  CompatibilityReport: Type.Optional(Type.Object({
    OperationType: Type.Literal('ImportVirtualMachine'),
    Path: HostPath('The exported config the report is about'),
  }, { additionalProperties: true, description: 'A VMCompatibilityReport from Compare-VM, edited to resolve its incompatibilities (its options and VM replace the others)' })),
}, { additionalProperties: false });
export type ImportBody = Static<typeof ImportBody>;
