; L2 scripts of scenario 13 (s_apicv.c): accesses to the APIC-access page, whose address L1
; puts in RBX, and CR8. Each ends with VMCALL; an access that exits does so at +0.
bits 64
default rel
section .text
global l2_av_rd80, l2_av_wr80, l2_av_rd20, l2_av_wr300, l2_av_eoi
l2_av_rd80:                     ; TPR read: virtualized, VTPR
    mov eax, [rbx + 0x80]
    vmcall
    ud2
l2_av_wr80:                     ; TPR write: virtualized, then TPR virtualization (29.1.2)
    mov dword [rbx + 0x80], 0x30
    vmcall
    ud2
l2_av_rd20:                     ; APIC ID read: without APIC-register virtualization, exit 44
    mov ecx, [rbx + 0x20]
    vmcall
    ud2
l2_av_wr300:                    ; ICR write: exit 44 (or virtualized with APIC-register virtualization)
    mov dword [rbx + 0x300], 0x12345
    vmcall
    ud2
l2_av_eoi:                      ; EOI write: EOI virtualization with virtual-interrupt delivery
    mov dword [rbx + 0xb0], 0
    vmcall
    ud2
