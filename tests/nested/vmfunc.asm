; L2 scripts of s_vmfunc.c: VMFUNC (0F 01 D4, written as bytes) and EPT accesses around it.
bits 64
default rel
section .text
global l2_vmfunc, l2_vmfunc_sw, l2_vmfunc_ve
l2_vmfunc:                           ; VMFUNC with L1's EAX, ECX
    db 0x0f, 0x01, 0xd4
    vmcall
    ud2
l2_vmfunc_sw:                        ; R9 = [RBX]; EPTP entry RSI; R10 = [RBX]; entry RDI; R11 = [RBX]
    mov r9, [rbx]
    xor eax, eax
    mov ecx, esi
    db 0x0f, 0x01, 0xd4
    mov r10, [rbx]
    xor eax, eax
    mov ecx, edi
    db 0x0f, 0x01, 0xd4
    mov r11, [rbx]
    vmcall
    ud2
l2_vmfunc_ve:                        ; EPTP entry RSI, then RAX = [RBX] (at +7)
    xor eax, eax
    mov ecx, esi
    db 0x0f, 0x01, 0xd4
    mov rax, [rbx]
    vmcall
    ud2
