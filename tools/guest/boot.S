/* SPDX-License-Identifier: GPL-2.0 */
/*
 * refaccel-guest boot stub: multiboot v1 header, flat GDT, cleared .bss,
 * stack, and the interrupt stubs (exceptions 0-31 report and stop, PIC
 * IRQs 32-47 are acknowledged and ignored: IRQ0 only wakes up HLT).
 */

#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000000
#define STACK_SIZE	16384

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.text
	.globl _start
_start:
	cli
	cld
	movl %eax, %esi			/* multiboot magic */
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $stack_top, %esp
	pushl %ebx			/* multiboot info */
	pushl %esi
	call kmain
2:	cli
	hlt
	jmp 2b

/* exceptions: push a dummy error code where the CPU pushes none */
	.irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
isr_\n:	pushl $0
	pushl $\n
	jmp exc_common
	.endr
	.irp n, 8,10,11,12,13,14,17,21,29,30
isr_\n:	pushl $\n
	jmp exc_common
	.endr

exc_common:
	pushl %esp			/* -> vector, error, eip, cs, eflags */
	call exc_handler
3:	cli
	hlt
	jmp 3b

/* PIC interrupts: end of interrupt, nothing else */
	.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
isr_\n:	pushl %eax
	movb $0x20, %al
	.if \n >= 40
	outb %al, $0xa0
	.endif
	outb %al, $0x20
	popl %eax
	iret
	.endr

	.section .rodata
	.align 4
	.globl isr_table
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
	.long isr_\n
	.endr
	.irp n, 24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43
	.long isr_\n
	.endr
	.irp n, 44,45,46,47
	.long isr_\n
	.endr

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff		/* 0x08: code, flat 4 GiB */
	.quad 0x00cf92000000ffff		/* 0x10: data, flat 4 GiB */
gdt_end:
	.align 4
	.word 0
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.align 16
	.space STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
