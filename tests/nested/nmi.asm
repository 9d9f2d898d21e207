; The NMI scenario's code (s_nmi.c): L1's and L2's NMI handlers, an IRET to the next
; instruction (it ends NMI blocking, SDM Vol. 3A 6.7.1), and L2 scripts that send NMIs to
; their own local APIC: the xAPIC's ICR, delivery mode NMI, physical destination = own APIC
; ID (SDM Vol. 3A 10.6.1). L1's page tables and L2's map the APIC page 1:1.
bits 64
default rel

%define ICR_LO 0x300
%define ICR_HI 0x310
%define ICR_NMI 0x4400                ; NMI, level assert, physical destination

section .data
global nmi_apic, nmi_dest, l1_nmi_count, l2_nmi_count, l2_nmi_resend, l2_nmi_inside
align 8
nmi_apic:      dq 0                   ; the xAPIC's base (s_nmi.c)
l1_nmi_count:  dq 0                   ; NMIs L1's handler took
l2_nmi_count:  dq 0                   ; NMIs L2's handler took
l2_nmi_resend: dq 0                   ; L2's handler sends this many NMIs to itself, one per run
l2_nmi_inside: dq 0                   ; l2_nmi_count as the handler that resent saw it at its IRET
nmi_dest:      dd 0                   ; ICR high: own APIC ID << 24

section .text

; One NMI to this CPU (RAX, RDX clobbered). The NMI is pending once the ICR write is done.
%macro SEND_NMI 0
    mov rdx, [rel nmi_apic]
    mov eax, [rel nmi_dest]
    mov [rdx + ICR_HI], eax
    mov dword [rdx + ICR_LO], ICR_NMI
%endmacro

; Some instructions for a pending NMI to break in (ECX clobbered).
%macro SPIN 1
    mov ecx, %1
%%loop:
    dec ecx
    jnz %%loop
%endmacro

; IRET to the next instruction at the same privilege level (RAX, RCX clobbered).
%macro IRET_SELF 0
    mov rax, rsp
    mov ecx, ss
    push rcx
    push rax
    pushfq
    mov ecx, cs
    push rcx
    lea rcx, [rel %%after]
    push rcx
    iretq
%%after:
%endmacro

; ---- L1 ----
global l1_nmi_handler, l1_iret_self
l1_nmi_handler:                       ; counts, returns
    add qword [rel l1_nmi_count], 1
    iretq

l1_iret_self:                         ; void l1_iret_self(void)
    IRET_SELF
    ret

; ---- L2 ----
; L2's NMI handler: counts; while l2_nmi_resend is not 0, sends itself one more NMI, which
; must wait for this handler's IRET, and records the count it still sees then.
global l2_nmi_handler, l2_nmi_handler_sent
l2_nmi_handler:
    push rax
    push rcx
    push rdx
    add qword [rel l2_nmi_count], 1
    cmp qword [rel l2_nmi_resend], 0
    je l2_nmi_handler_out
    sub qword [rel l2_nmi_resend], 1
    SEND_NMI
l2_nmi_handler_sent:
    SPIN 2000
    mov rax, [rel l2_nmi_count]
    mov [rel l2_nmi_inside], rax
l2_nmi_handler_out:
    pop rdx
    pop rcx
    pop rax
    iretq

; One NMI to itself, then VMCALL.
global l2_nmi_self, l2_nmi_self_sent
l2_nmi_self:
    SEND_NMI
l2_nmi_self_sent:
    SPIN 2000
    vmcall
    ud2

; One NMI to itself, then an IRET, then VMCALL (for an L2 that starts NMI-blocked).
global l2_nmi_iret, l2_nmi_iret_sent, l2_nmi_iret_after
l2_nmi_iret:
    SEND_NMI
l2_nmi_iret_sent:
    SPIN 2000
    IRET_SELF
l2_nmi_iret_after:
    SPIN 2000
    vmcall
    ud2

; RBX NMIs to itself, each followed by a short loop, then VMCALL.
global l2_nmi_many, l2_nmi_many_sent
l2_nmi_many:
    SEND_NMI
l2_nmi_many_sent:
    SPIN 200
    sub rbx, 1
    jnz l2_nmi_many
    vmcall
    ud2
