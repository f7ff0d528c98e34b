// A 64 KiB BIOS image for the accelerator probe. At reset it enables the FPU and SSE, runs
// x87 and SSE instructions (the ones a half-working KVM fails to run — on this machine the
// first `fninit` of OVMF/Linux ends in "KVM internal error … emulation failure"), checks
// 1 + 1 = 2, and writes PROBE_MARKER to the debug console port 0xe9 ('F' on a wrong result).
// Depends on nothing.
//
// Source (GNU as, `as --32`, `ld -m elf_i386 -Ttext 0 --oformat binary`):
//   .code16
//   start: mov $0xe9,%dx
//     mov %cr0,%eax; and $0xfffffff3,%eax; or $0x22,%eax; mov %eax,%cr0   # EM=0 TS=0 MP=1 NE=1
//     mov %cr4,%eax; or $0x600,%eax; mov %eax,%cr4                        # OSFXSR OSXMMEXCPT
//     xor %ax,%ax; mov %ax,%ds
//     fninit; fld1; fld1; faddp; fistps 0x500; fwait
//     xorps %xmm0,%xmm0; addps %xmm0,%xmm0
//     movw 0x500,%ax; cmp $2,%ax; jne fail
//     mov $msg,%si
//   1: cs lodsb; test %al,%al; jz halt; out %al,%dx; jmp 1b
//   fail: mov $'F',%al; out %al,%dx
//   halt: cli; hlt; jmp halt
//   msg: .asciz "VMHOST-PROBE-OK\n"
//   .org 0xfff0; jmp start                                                # reset vector
//   .org 0x10000

export const PROBE_MARKER = 'VMHOST-PROBE-OK';

const CODE_HEX =
  'bae9000f20c06683e0f36683c8220f22c00f20e0660d000600000f22e031c08ed8dbe3d9e8d9e8dec1df1e0005' +
  '9b0f57c00f58c0a1000583f802750cbe4f002eac84c07406eeebf7b046eefaf4ebfc564d484f53542d50524f42' +
  '452d4f4b0a00';
const RESET_VECTOR_HEX = 'e90d00'; // jmp 0x0000 (near, from 0xfff0)

/** The ROM image (pass to QEMU with `-bios`). */
export function probeRom(): Buffer {
  const rom = Buffer.alloc(0x10000);
  Buffer.from(CODE_HEX, 'hex').copy(rom, 0);
  Buffer.from(RESET_VECTOR_HEX, 'hex').copy(rom, 0xfff0);
  return rom;
}
