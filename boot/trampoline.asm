; boot_call_core(fn, arg0, arg1): call a core entry point so that, once the core
; has put this CPU under VMX, the guest continues right here as if fn returned 0.
; C cannot do this: the resume point needs a known stack layout (struct hv_resume).
bits 64
default rel
section .text

; int boot_call_core(void *fn, void *arg0, uint64_t arg1)   (SysV ABI)
; calls fn(arg0, arg1, &resume): both core entry points have that signature.
global boot_call_core
boot_call_core:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    pushfq                      ; rsp is now 16-byte aligned (8 + 7 * 8)
    sub rsp, 32                 ; struct hv_resume { rip, rsp, rflags } + padding
    lea rax, [rel .resume]
    mov [rsp], rax
    lea rax, [rsp + 32]         ; the guest's RSP at .resume: the saved RFLAGS
    mov [rsp + 8], rax
    mov rax, [rsp + 32]
    mov [rsp + 16], rax
    mov rax, rdi
    mov rdi, rsi
    mov rsi, rdx
    mov rdx, rsp                ; &resume for fn(arg0, arg1, &resume)
    call rax
    add rsp, 32
.resume:                        ; the guest arrives here with RAX = 0
    popfq
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
