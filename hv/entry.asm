; The core's assembly: what C cannot express.
;  - vmx_exit_stub: HOST_RIP. CPUID of the hardware's leaves (the hottest exit) is
;    handled right here; every other exit saves the guest GPRs into vcpu->rc.regs
;    (offset 0, x86 encoding order), calls vmexit_handler, restores them, VMRESUMEs.
;  - vmx_launch: VMLAUNCH with guest RAX = 0 (the guest sees its call return 0).
;  - host_idt_stubs: host exception/NMI entry points → host_exception(frame).
;  - safe_rdmsr / safe_wrmsr / safe_xsetbv: may fault; host_exception resumes
;    them at their fixup (the guest gets #GP instead of hv crashing).
bits 64
default rel
section .text

extern vmexit_handler           ; struct vcpu *vmexit_handler(struct vcpu *)
extern vmresume_failed          ; struct vcpu *vmresume_failed(struct vcpu *): returns only if recoverable
extern vmexit_nmi_late          ; struct vcpu *vmexit_nmi_late(struct vcpu *)
extern host_exception           ; void host_exception(struct host_frame *)
extern cpuid1_ecx_and, cpuid1_ecx_or ; hv's changes to CPUID.1:ECX (hv/exit_cpuid.c)

%include "asm_offsets.inc"

; Save the guest GPRs into vcpu->rc.regs; expects RSP == HOST_RSP + 8 after `push rax`.
%macro SAVE_GPRS 0
    push rax
    mov rax, [rsp + 8]          ; the vcpu pointer stored at HOST_RSP
    mov [rax + 0x08], rcx
    mov [rax + 0x10], rdx
    mov [rax + 0x18], rbx
    mov [rax + 0x28], rbp
    mov [rax + 0x30], rsi
    mov [rax + 0x38], rdi
    mov [rax + 0x40], r8
    mov [rax + 0x48], r9
    mov [rax + 0x50], r10
    mov [rax + 0x58], r11
    mov [rax + 0x60], r12
    mov [rax + 0x68], r13
    mov [rax + 0x70], r14
    mov [rax + 0x78], r15
    pop qword [rax]
%endmacro

global vmx_exit_stub
vmx_exit_stub:
    ; CPUID fast path. RBX and RDX are free once the exit is known to be CPUID
    ; (CPUID overwrites them), so only they are saved before the test, with RAX (the leaf),
    ; straight into vcpu->rc.regs through GS (the vcpu): every other exit leaves them there.
    mov [gs:VCPU_REGS + 0x00], rax
    mov [gs:VCPU_REGS + 0x10], rdx
    mov [gs:VCPU_REGS + 0x18], rbx
    mov edx, VMCS_EXIT_REASON
    vmread rbx, rdx
    cmp ebx, EXIT_CPUID
    jne .slow
    mov ebx, eax
    and ebx, 0xf0000000
    cmp ebx, 0x40000000             ; hv's own leaves: in C
    je .slow
    cmp byte [gs:VCPU_GUEST_MODE], 0
    jne .slow                       ; L2's CPUID belongs to L1: in C
    mov edx, VMCS_GUEST_INTR_STATE
    vmread rbx, rdx
    test ebx, 3                     ; under STI/MOV SS blocking: skipping CPUID ends it, in C
    jnz .slow
    mov edx, VMCS_GUEST_RFLAGS
    vmread rbx, rdx
    test ebx, 0x100                 ; RFLAGS.TF: the single-step trap after CPUID, in C
    jnz .slow
    cpuid
    cmp dword [gs:VCPU_REGS + 0x00], 1 ; the leaf
    jne .rip
    and ecx, [rel cpuid1_ecx_and]   ; hide VMX unless nested
    or ecx, [rel cpuid1_ecx_or]     ; hypervisor present
.rip:
    push rsi
    push rdi
    mov esi, VMCS_GUEST_RIP
    vmread rdi, rsi
    mov esi, VMCS_EXIT_INSTR_LEN
    vmread rsi, rsi
    add rdi, rsi
    mov esi, VMCS_GUEST_RIP
    vmwrite rsi, rdi
    add qword [gs:VCPU_STATS_TOTAL], 1 ; statistics as the C path keeps them
    add qword [gs:VCPU_STATS_CPUID], 1
    add qword [gs:VCPU_VMREADS], 5
    add qword [gs:VCPU_VMWRITES], 1
    pop rdi
    pop rsi
    jmp .resume
.slow:
    ; The guest's RAX, RDX, RBX are in vcpu->rc.regs already, the others live: they go there
    ; through GS (the vcpu), which needs no register for the address.
    mov [gs:VCPU_REGS + 0x08], rcx
    mov [gs:VCPU_REGS + 0x28], rbp
    mov [gs:VCPU_REGS + 0x30], rsi
    mov [gs:VCPU_REGS + 0x38], rdi
    mov [gs:VCPU_REGS + 0x40], r8
    mov [gs:VCPU_REGS + 0x48], r9
    mov [gs:VCPU_REGS + 0x50], r10
    mov [gs:VCPU_REGS + 0x58], r11
    mov [gs:VCPU_REGS + 0x60], r12
    mov [gs:VCPU_REGS + 0x68], r13
    mov [gs:VCPU_REGS + 0x70], r14
    mov [gs:VCPU_REGS + 0x78], r15
    mov rdi, [rsp]                  ; the vcpu pointer stored at HOST_RSP
    call vmexit_handler             ; rsp == HOST_RSP: 16-byte aligned
.restore:
    mov rcx, [rax + 0x08]
    mov rdx, [rax + 0x10]
    mov rbx, [rax + 0x18]
    mov rbp, [rax + 0x28]
    mov rsi, [rax + 0x30]
    mov rdi, [rax + 0x38]
    mov r8,  [rax + 0x40]
    mov r9,  [rax + 0x48]
    mov r10, [rax + 0x50]
    mov r11, [rax + 0x58]
    mov r12, [rax + 0x60]
    mov r13, [rax + 0x68]
    mov r14, [rax + 0x70]
    mov r15, [rax + 0x78]
    cmp byte [rax + VCPU_LAUNCH_PENDING], 0
    mov rax, [rax]                  ; (mov leaves the flags alone)
    jne .launch
    ; Every GPR holds the guest's value from here on. An NMI that hits hv after its last
    ; look (nmi_arrived) is looked at here; one that hits after this look makes
    ; host_exception move the interrupted RIP back to it (nmi_rewind below), so no NMI
    ; waits for the guest's next exit.
.resume:
    cmp byte [gs:VCPU_NMI_ARRIVED], 0
.resume_jne:
    jne .nmi_late
.resume_insn:
    vmresume
    jmp .entry_failed
.launch:
    cmp byte [gs:VCPU_NMI_ARRIVED], 0
.launch_jne:
    jne .nmi_late
.launch_insn:
    vmlaunch                        ; a fresh vmcs02 for L2
.entry_failed:
    SAVE_GPRS                       ; a failed entry leaves the guest's GPRs live: keep them
    mov rdi, rax
    call vmresume_failed        ; fatal, or (a vmcs02 the CPU refused) back to L1
    jmp .restore
.nmi_late:
    SAVE_GPRS
    mov rdi, rax
    call vmexit_nmi_late        ; deliver it (or open its window), flush
    jmp .restore

; int vmx_launch(void): returns only on failure (1 = VMfailInvalid, 2 = VMfailValid)
global vmx_launch
vmx_launch:
    xor eax, eax
    vmlaunch
    mov eax, 1
    jc .out
    mov eax, 2
.out:
    ret

; Host IDT: 32 exception vectors. Each stub pushes an error code (0 when the CPU
; does not), then the vector; host_common saves the GPRs and calls C.
%macro EXC 1
exc_%1:
%if %1 = 8 || (%1 >= 10 && %1 <= 14) || %1 = 17 || %1 = 21 || %1 = 29 || %1 = 30
%else
    push 0
%endif
    push %1
    jmp host_common
%endmacro
%assign v 0
%rep 32
    EXC v
%assign v v + 1
%endrep

host_common:                    ; frame: r15..rax, vector, error, rip, cs, rflags, rsp, ss
    push rax
    push rcx
    push rdx
    push rbx
    push rbp
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    mov rbx, rsp
    and rsp, -16
    call host_exception         ; may change frame->rip (fixups) or never return
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rbp
    pop rbx
    pop rdx
    pop rcx
    pop rax
    add rsp, 16                 ; vector, error code
    iretq

; int safe_rdmsr(uint32_t msr, uint64_t *val): 0, or -1 if RDMSR faulted
global safe_rdmsr
safe_rdmsr:
    mov ecx, edi
.insn:
    rdmsr
    shl rdx, 32
    mov eax, eax
    or rax, rdx
    mov [rsi], rax
    xor eax, eax
    ret
.fail:
    mov eax, -1
    ret

; int safe_wrmsr(uint32_t msr, uint64_t val)
global safe_wrmsr
safe_wrmsr:
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
.insn:
    wrmsr
    xor eax, eax
    ret
.fail:
    mov eax, -1
    ret

; int safe_xsetbv(uint32_t xcr, uint64_t val)
global safe_xsetbv
safe_xsetbv:
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
.insn:
    xsetbv
    xor eax, eax
    ret
.fail:
    mov eax, -1
    ret

section .data
align 8
global host_idt_stub_table
host_idt_stub_table:
%assign v 0
%rep 32
    dq exc_ %+ v
%assign v v + 1
%endrep

; {interrupted RIP, where an NMI makes it continue} pairs, ended by zeros: the last
; look at nmi_arrived before VM entry is taken again (host_exception)
global nmi_rewind
nmi_rewind:
    dq vmx_exit_stub.resume_jne, vmx_exit_stub.resume
    dq vmx_exit_stub.resume_insn, vmx_exit_stub.resume
    dq vmx_exit_stub.launch_jne, vmx_exit_stub.launch
    dq vmx_exit_stub.launch_insn, vmx_exit_stub.launch
    dq 0, 0

; {faulting instruction, where to continue} pairs, ended by zeros
global host_fixups
host_fixups:
    dq safe_rdmsr.insn, safe_rdmsr.fail
    dq safe_wrmsr.insn, safe_wrmsr.fail
    dq safe_xsetbv.insn, safe_xsetbv.fail
    dq 0, 0
