; L2 scripts of scenario 13 (s_vshadow.c): one VMREAD or VMWRITE under L1's VMCS shadowing,
; then RFLAGS in R8 and a VMCALL. L1 sets RCX (the encoding), RDX (a value), RBX (an L2 address).
bits 64
default rel
section .text
global l2_vsh_read, l2_vsh_write, l2_vsh_readm, l2_vsh_writem
l2_vsh_read:                         ; VMREAD rdx, rcx
    vmread rdx, rcx
    pushfq
    pop r8
    vmcall
    ud2
l2_vsh_write:                        ; VMWRITE rcx, rdx
    vmwrite rcx, rdx
    pushfq
    pop r8
    vmcall
    ud2
l2_vsh_readm:                        ; VMREAD [rbx + 8], rcx
    vmread [rbx + 8], rcx
    pushfq
    pop r8
    vmcall
    ud2
l2_vsh_writem:                       ; VMWRITE rcx, [rbx + 8]
    vmwrite rcx, [rbx + 8]
    pushfq
    pop r8
    vmcall
    ud2
