; l1.efi's assembly: what C cannot express.
; - L1's exception stubs: a fault in an armed VMX instruction resumes at its fixup
;   (trap_fixup) so the C wrapper reports "#UD"/"#GP"; any other fault longjmps to the
;   scenario runner (trap_recover).
; - vmx_enter / vmx_exit_landing: VMLAUNCH/VMRESUME with L2's GPRs, and the HOST_RIP
;   that saves them back (a VM exit loads only RSP/RIP of the host, SDM 28.5).
; - L2's code: small scripts, and 256 IDT stubs that report their vector by VMCALL.
bits 64
default rel

section .data
global trap_fixup, trap_vector, trap_error, trap_rip, trap_recover
align 8
trap_fixup:   dq 0
trap_error:   dq 0
trap_rip:     dq 0
trap_recover: dq 0
trap_vector:  dd 0xffffffff

section .text

; ---- L1 exception handling ----
; Vectors pushing an error code (SDM Vol. 3A 6.15): 8, 10-14, 17, 21, 29, 30.
align 16
global l1_isr_table
l1_isr_table:
%assign v 0
%rep 32
    align 16
  %if v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30
    push qword v
  %else
    push qword 0
    push qword v
  %endif
    jmp near trap_common
%assign v v + 1
%endrep

; stack: vector, error, rip, cs, rflags, rsp, ss
trap_common:
    push rax
    mov rax, [rsp + 8]
    mov [rel trap_vector], eax
    mov rax, [rsp + 16]
    mov [rel trap_error], rax
    mov rax, [rsp + 24]
    mov [rel trap_rip], rax
    mov rax, [rel trap_fixup]
    test rax, rax
    jz .unexpected
    mov [rsp + 24], rax              ; resume at the fixup
    mov qword [rel trap_fixup], 0
    pop rax
    add rsp, 16
    iretq
.unexpected:
    mov rax, [rel trap_recover]
    test rax, rax
    jz .dead
    mov rbx, [rax]                   ; longjmp(trap_recover, 1)
    mov rbp, [rax + 8]
    mov r12, [rax + 16]
    mov r13, [rax + 24]
    mov r14, [rax + 32]
    mov r15, [rax + 40]
    mov rsp, [rax + 48]
    mov rdx, [rax + 56]
    mov eax, 1
    jmp rdx
.dead:
    cli
    hlt
    jmp .dead

; int l1_setjmp(struct jb *b)
global l1_setjmp
l1_setjmp:
    mov [rdi], rbx
    mov [rdi + 8], rbp
    mov [rdi + 16], r12
    mov [rdi + 24], r13
    mov [rdi + 32], r14
    mov [rdi + 40], r15
    lea rax, [rsp + 8]
    mov [rdi + 48], rax
    mov rax, [rsp]
    mov [rdi + 56], rax
    xor eax, eax
    ret

; ---- VM entry and exit ----
; struct regs: rax rbx rcx rdx rsi rdi rbp r8..r15 at 8-byte steps.
%define R_RAX 0
%define R_RBX 8
%define R_RCX 16
%define R_RDX 24
%define R_RSI 32
%define R_RDI 40
%define R_RBP 48
%define R_R8 56

; int vmx_enter(struct regs *r, int resume): 0 = VM exit, 1 = VMfailInvalid,
; 2 = VMfailValid, 3 = exception (trap_vector says which).
global vmx_enter, vmx_exit_landing
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                         ; [rsp + 8] at the landing: the regs pointer
    sub rsp, 8
    lea rax, [rel .fault]
    mov [rel trap_fixup], rax
    mov eax, 0x6c14                  ; HOST_RSP
    vmwrite rax, rsp
    test esi, esi                    ; flags survive the MOVs below
    mov rax, [rdi + R_RAX]
    mov rbx, [rdi + R_RBX]
    mov rcx, [rdi + R_RCX]
    mov rdx, [rdi + R_RDX]
    mov rsi, [rdi + R_RSI]
    mov rbp, [rdi + R_RBP]
    mov r8, [rdi + R_R8]
    mov r9, [rdi + R_R8 + 8]
    mov r10, [rdi + R_R8 + 16]
    mov r11, [rdi + R_R8 + 24]
    mov r12, [rdi + R_R8 + 32]
    mov r13, [rdi + R_R8 + 40]
    mov r14, [rdi + R_R8 + 48]
    mov r15, [rdi + R_R8 + 56]
    mov rdi, [rdi + R_RDI]
    jnz .resume
    vmlaunch
    jmp .failed
.resume:
    vmresume
.failed:
    mov qword [rel trap_fixup], 0    ; MOV keeps CF/ZF of the VMfail
    mov eax, 1
    jc vmx_enter_out
    mov eax, 2
    jz vmx_enter_out
    mov eax, 4
    jmp vmx_enter_out
.fault:
    mov eax, 3
    jmp vmx_enter_out
vmx_exit_landing:                    ; RSP = HOST_RSP, RFLAGS = 2 (SDM 28.5.3)
    push rdi
    mov rdi, [rsp + 16]
    mov [rdi + R_RAX], rax
    mov [rdi + R_RBX], rbx
    mov [rdi + R_RCX], rcx
    mov [rdi + R_RDX], rdx
    mov [rdi + R_RSI], rsi
    mov [rdi + R_RBP], rbp
    mov [rdi + R_R8], r8
    mov [rdi + R_R8 + 8], r9
    mov [rdi + R_R8 + 16], r10
    mov [rdi + R_R8 + 24], r11
    mov [rdi + R_R8 + 32], r12
    mov [rdi + R_R8 + 40], r13
    mov [rdi + R_R8 + 48], r14
    mov [rdi + R_R8 + 56], r15
    pop rax
    mov [rdi + R_RDI], rax
    mov qword [rel trap_fixup], 0
    xor eax, eax
vmx_enter_out:
    add rsp, 8
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

; ---- bench mode (bench.c): L1's exit handler as a dedicated loop, no C ----
; u64 bench_rt(u64 n, u64 hv, u64 *exits): n L2 CPUID round trips, each: L2's CPUID exits,
;   L1 does VMREAD VM_EXIT_REASON (checks it is CPUID), VMREAD VM_EXIT_INSTRUCTION_LEN,
;   VMREAD GUEST_RIP, VMWRITE GUEST_RIP + len, VMRESUME. Needs a launched current VMCS
;   whose L2 runs l2_bench; points HOST_RSP/HOST_RIP at itself (the caller restores
;   HOST_RIP). The first exit is a warm-up: the TSC window runs from that exit's landing
;   to the (n+1)-th landing, i.e. exactly n times handler + VMRESUME + L2 + exit.
; u64 bench_handler(u64 n, u64 hv, u64 *exits): the same loop without the VM entry (the
;   handler jumps straight back to the landing): what L1's handler costs alone. It moves
;   GUEST_RIP by n * len: the caller puts it back.
; Both return the TSC delta, BENCH_UNEXPECTED (bench_reason = the exit reason) or
; BENCH_FAILED (VMRESUME failed). With hv != 0 (hv's CPUID signature seen) they execute
; VMCALL HV_HC_GET_EXITS just before t0 and just after t1 (never on bare Bochs: VMCALL
; in VMX root operation is not a hypercall there) and store the difference at *exits:
; the window's L0 exits + 1 (the second VMCALL's own exit).
; L1's state lives in R12-R15 across L2: VM entries and exits keep the GPRs (SDM 27.3,
; 28.1) and l2_bench writes only RAX. The handler's own registers are RAX-RDX.
global bench_rt, bench_handler, bench_kvm, bench_reason
section .data
bench_reason: dd 0
section .text
%define HV_HC_GET_EXITS 0x48560003
%macro BENCH 3                       ; name, 1 = VMRESUME / 0 = no VM entry, 1 = KVM's field pattern
%1:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdx                         ; [rsp]: the exits pointer (also HOST_RSP)
    mov r12, rdi                     ; landings left until t1
    mov r15, rsi                     ; hv present
    xor r13d, r13d                   ; t0 (0: not taken yet)
    xor r14d, r14d                   ; exits at t0
%if %2
    mov eax, 0x6c14                  ; HOST_RSP
    vmwrite rax, rsp
    mov eax, 0x6c16                  ; HOST_RIP
    lea rdx, [rel %%exit]
    vmwrite rax, rdx
    jmp %%enter                      ; warm-up entry: L2 re-executes its CPUID
%endif
%%exit:                              ; HOST_RIP: RSP = HOST_RSP, GPRs as L2 left them
    test r13, r13
    jz %%start
    sub r12, 1
    jz %%done
%%handler:
    mov ecx, 0x4402                  ; VM_EXIT_REASON
    vmread rax, rcx
    cmp eax, 10                      ; CPUID
    jne %%unexpected
    mov ecx, 0x440c                  ; VM_EXIT_INSTRUCTION_LEN
    vmread rbx, rcx
    mov ecx, 0x681e                  ; GUEST_RIP
    vmread rdx, rcx
    add rdx, rbx
    vmwrite rcx, rdx
%if %3
    ; KVM's hot path (vmx_vcpu_run, vmx_handle_exit, skip_emulated_instruction,
    ; vmx_set_interrupt_shadow, event injection): the exit information and L2's
    ; interruptibility read; L2's RSP/RFLAGS/interruptibility, the event injection, the
    ; TPR threshold, HOST_CR3 and HOST_RSP (its stack moves at every system call) written.
    mov ecx, 0x6400                  ; EXIT_QUALIFICATION
    vmread rax, rcx
    mov ecx, 0x4408                  ; IDT_VECTORING_INFO_FIELD
    vmread rax, rcx
    mov ecx, 0x4404                  ; VM_EXIT_INTR_INFO
    vmread rax, rcx
    mov ecx, 0x4824                  ; GUEST_INTERRUPTIBILITY_INFO
    vmread rax, rcx
    vmwrite rcx, rax
    mov ecx, 0x681c                  ; GUEST_RSP
    vmread rax, rcx
    vmwrite rcx, rax
    mov ecx, 0x6820                  ; GUEST_RFLAGS
    vmread rax, rcx
    vmwrite rcx, rax
    mov ecx, 0x4016                  ; VM_ENTRY_INTR_INFO_FIELD
    xor eax, eax
    vmwrite rcx, rax
    mov ecx, 0x401c                  ; TPR_THRESHOLD
    vmwrite rcx, rax
    mov ecx, 0x6c02                  ; HOST_CR3
    mov rax, cr3
    vmwrite rcx, rax
    mov ecx, 0x6c14                  ; HOST_RSP
    vmwrite rcx, rsp
%endif
%%enter:
%if %2
    vmresume
    mov r13, BENCH_FAILED
    jmp %%out
%else
    jmp %%exit
%endif
%%start:                             ; first landing: take t0 (outside the loop body)
    test r15, r15
    jz %%t0
    mov eax, HV_HC_GET_EXITS
    vmcall
    mov r14, rax
%%t0:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r13, rax
    jmp %%handler
%%done:
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, r13
    mov r13, rax
    test r15, r15
    jz %%out
    mov eax, HV_HC_GET_EXITS
    vmcall
    sub rax, r14
    mov rdx, [rsp]
    mov [rdx], rax
    jmp %%out
%%unexpected:
    mov [rel bench_reason], eax
    mov r13, BENCH_UNEXPECTED
%%out:
    mov rax, r13
    pop rdx
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
%endmacro
%define BENCH_UNEXPECTED -1
%define BENCH_FAILED -2
align 16
BENCH bench_rt, 1, 0
align 16
BENCH bench_handler, 0, 0
align 16
BENCH bench_kvm, 1, 1

; void bench_split(u64 n, u64 sum[2]): the round trip in two halves, with L2 reading the
;   TSC too (l2_bench_tsc: RDTSC into R8, then CPUID): sum[0] += L2's TSC - L1's TSC just
;   before VMRESUME (the VM entry), sum[1] += L1's TSC at the landing - L2's (L2's CPUID
;   and the VM exit). Same handler as bench_rt; the first exit is a warm-up. Returns 0,
;   BENCH_UNEXPECTED or BENCH_FAILED. R9 = L1's TSC before VMRESUME (L2 writes RAX, RDX, R8).
global bench_split
align 16
bench_split:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rsi                         ; [rsp]: sum
    mov r12, rdi
    xor r13d, r13d                   ; entry sum
    xor r14d, r14d                   ; exit sum
    xor r15d, r15d                   ; 0 until the warm-up exit
    mov eax, 0x6c14                  ; HOST_RSP
    vmwrite rax, rsp
    mov eax, 0x6c16                  ; HOST_RIP
    lea rdx, [rel .exit]
    vmwrite rax, rdx
    jmp .enter
.exit:
    rdtsc
    shl rdx, 32
    or rax, rdx
    test r15, r15
    jz .first
    mov rbx, r8
    sub rbx, r9
    add r13, rbx
    sub rax, r8
    add r14, rax
    sub r12, 1
    jz .done
.handler:
    mov ecx, 0x4402                  ; VM_EXIT_REASON
    vmread rax, rcx
    cmp eax, 10                      ; CPUID
    jne .unexpected
    mov ecx, 0x440c                  ; VM_EXIT_INSTRUCTION_LEN
    vmread rbx, rcx
    mov ecx, 0x681e                  ; GUEST_RIP
    vmread rdx, rcx
    add rdx, rbx
    vmwrite rcx, rdx
.enter:
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r9, rax
    vmresume
    mov rax, BENCH_FAILED
    jmp .out
.first:
    mov r15d, 1
    jmp .handler
.unexpected:
    mov [rel bench_reason], eax
    mov rax, BENCH_UNEXPECTED
    jmp .out
.done:
    mov rdx, [rsp]
    mov [rdx], r13
    mov [rdx + 8], r14
    xor eax, eax
.out:
    pop rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

; ---- L2: 64-bit code at CPL 0 on L1's GDT, its own stack, IDT and page tables ----
; L1 points GUEST_RIP at a script and prints exits as offsets from its start.
global l2_vmcall, l2_cpuid, l2_hlt, l2_out80, l2_io2, l2_msr, l2_cr0, l2_cr3, l2_cr4, l2_cr8, l2_exc
global l2_sti, l2_iret, l2_iret_after, l2_spin, l2_nops, l2_rdtsc, l2_invlpg, l2_pause, l2_movdr
global l2_vmxinsn, l2_kgs, l2_seed, l2_seed_hlt, l2_out_loop

align 16
l2_vmcall:
    vmcall
    ud2
l2_cpuid:
    xor eax, eax
    cpuid
    vmcall
    ud2
l2_hlt:
    hlt
    vmcall
    ud2
l2_out80:
    mov al, 0x55
    out 0x80, al
    vmcall
    ud2
l2_io2:
    mov al, 0x55
    out 0x80, al
    mov dx, 0x9000
    in al, dx
    vmcall
    ud2
l2_msr:
    mov ecx, 0x174                   ; IA32_SYSENTER_CS
    rdmsr
    mov ecx, 0x174
    mov eax, 0x10
    xor edx, edx
    wrmsr
    mov ecx, 0x175                   ; IA32_SYSENTER_ESP: never intercepted by the bitmap
    rdmsr
    vmcall
    ud2
l2_cr0:
    mov rax, cr0                     ; TS comes from the read shadow
    mov rbx, rax
    or rbx, 8                        ; set TS: owned by L1 (mask) and differs from the shadow
    mov cr0, rbx
    vmcall
    ud2
l2_cr3:
    mov rcx, cr3
    mov cr3, rcx
    vmcall
    ud2
l2_cr4:
    mov rax, cr4                     ; VMXE comes from the read shadow
    mov cr4, rax                     ; equal to the shadow in the masked bits: no exit
    mov rbx, cr4
    vmcall
    ud2
l2_cr8:
    mov edx, 5
    mov cr8, rdx
    mov rsi, cr8
    vmcall
    ud2
l2_exc:
    ud2
    int3
    mov rbx, 0x8000000000000000      ; non-canonical: #GP(0)
    mov rax, [rbx]
    mov rbx, 0x100000000             ; not mapped in L2's page tables: #PF
    mov rax, [rbx]
    vmcall
    ud2
l2_sti:
    sti
    nop
    nop
    vmcall
    ud2
l2_iret:                             ; IRET unblocks (virtual) NMIs (SDM 25.3)
    mov rax, rsp
    mov ecx, ss
    push rcx
    push rax
    pushfq
    mov ecx, cs
    push rcx
    lea rcx, [rel l2_iret_after]
    push rcx
    iretq
l2_iret_after:
    nop
    vmcall
    ud2
l2_spin:
    inc rax
    jmp l2_spin
l2_out_loop:                         ; 2000 OUTs L1 does not intercept (each one hv's exit)
    mov ecx, 2000
.again:
    out 0x80, al
    dec ecx
    jnz .again
    vmcall
    ud2
l2_nops:
    nop
    nop
    nop
    vmcall
    ud2
l2_rdtsc:
    rdtsc
    vmcall
    ud2
l2_invlpg:
    mov eax, 0x123000
    invlpg [rax]
    vmcall
    ud2
l2_pause:
    pause
    vmcall
    ud2
l2_movdr:
    mov rax, dr7
    mov dr1, rbx
    vmcall
    ud2
l2_vmxinsn:
    mov ebx, 0x4402                  ; VM_EXIT_REASON
    vmread rax, rbx
    vmptrst [rsp + 8]
    vmcall
    ud2
l2_kgs:
    mov ecx, 0xc0000102              ; IA32_KERNEL_GS_BASE: not switched by VMX itself
    rdmsr
    mov r8, rax
    mov r9, rdx
    mov eax, 0x2222000
    xor edx, edx
    wrmsr
    vmcall
    ud2
l2_seed:
    xor eax, eax
    cpuid
    mov rax, cr3                     ; after L1's GUEST_CR3 write and the HLT wake-up
    vmcall
    ud2
l2_seed_hlt:
    hlt
    mov rax, cr3
    vmcall
    ud2
; Capability scenarios (s_caps.c)
global l2_desc, l2_ple
l2_ple:                              ; PAUSE-loop exiting: 2000 PAUSEs in a loop
    mov ecx, 2000
.loop:
    pause
    dec ecx
    jnz .loop
    vmcall
    ud2
l2_desc:                             ; descriptor-table exiting: each exits before it executes
    sgdt [rsp - 16]
    sidt [rsp - 32]
    sldt eax
    str ecx
    lgdt [rsp - 16]
    lidt [rsp - 32]
    lldt ax
    ltr cx
    vmcall
    ud2
; EPT scenarios (s_ept.c): L1 sets RBX/RCX before the entry; an EPT violation exits at the
; access, and after L1's fix the VMRESUME re-executes it.
global l2_ept_read, l2_ept_rd2, l2_ept_rw, l2_ept_call, l2_rep_stos
l2_rep_stos:                         ; RCX bytes of AL at RDI (REP STOSB)
    rep stosb
    vmcall
    ud2
l2_ept_read:                         ; RAX = [RBX]
    mov rax, [rbx]
    vmcall
    ud2
l2_ept_rd2:                          ; RAX = [RBX], RDX = [RCX]
    mov rax, [rbx]
    mov rdx, [rcx]
    vmcall
    ud2
global l2_ept_rd2_cpuid
l2_ept_rd2_cpuid:                    ; RSI = [RBX], RDI = [RCX], then CPUID leaf 0
    mov rsi, [rbx]
    mov rdi, [rcx]
    xor eax, eax
    cpuid
    vmcall
    ud2
l2_ept_rw:                           ; RAX = [RBX], then [RBX] = RCX (a plain store)
    mov rax, [rbx]
    mov [rbx], rcx
    vmcall
    ud2
global l2_ept_w2
align 16
l2_ept_w2:                           ; [RBX] = RCX, then [RDX] = RCX (two plain stores)
    mov [rbx], rcx
    mov [rdx], rcx
    vmcall
    ud2
l2_ept_call:                         ; call the code L1 put at RBX (it sets EAX and returns)
    call rbx
    vmcall
    ud2
global l2_bench
l2_bench:                            ; bench mode: CPUID leaf 0 forever (writes RAX only)
    xor eax, eax
    cpuid
    jmp l2_bench
global l2_bench_tsc
l2_bench_tsc:                        ; bench_split: the TSC into R8, then CPUID leaf 0
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r8, rax
    xor eax, eax
    cpuid
    jmp l2_bench_tsc

; L2's IDT: stub v sets EBX = v and reports by VMCALL with R15 = 0x15c (L2_ISR_MARK).
align 16
global l2_isr_table
l2_isr_table:
%assign v 0
%rep 256
    align 16
    mov ebx, v
    jmp near l2_isr_common
%assign v v + 1
%endrep
l2_isr_common:
    mov r15d, 0x15c
    vmcall
    ud2
