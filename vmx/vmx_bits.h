/* VMX control and capability bits (SDM Vol. 3C ch. 25 and Appendix A). */
#ifndef VMX_BITS_H
#define VMX_BITS_H

#define FEATURE_CONTROL_LOCKED             (1ull << 0)
#define FEATURE_CONTROL_VMXON_INSIDE_SMX   (1ull << 1)
#define FEATURE_CONTROL_VMXON_OUTSIDE_SMX  (1ull << 2)

#define VMX_BASIC_TRUE_CTLS                (1ull << 55)
#define VMX_BASIC_INOUT                    (1ull << 54)

/* Pin-based controls (25.6.1) */
#define PIN_BASED_EXT_INTR_EXITING         (1u << 0)
#define PIN_BASED_NMI_EXITING              (1u << 3)
#define PIN_BASED_VIRTUAL_NMIS             (1u << 5)
#define PIN_BASED_PREEMPTION_TIMER         (1u << 6)
#define PIN_BASED_POSTED_INTR              (1u << 7)

/* Primary processor-based controls (25.6.2) */
#define CPU_BASED_INTR_WINDOW_EXITING      (1u << 2)
#define CPU_BASED_USE_TSC_OFFSETTING       (1u << 3)
#define CPU_BASED_HLT_EXITING              (1u << 7)
#define CPU_BASED_INVLPG_EXITING           (1u << 9)
#define CPU_BASED_MWAIT_EXITING            (1u << 10)
#define CPU_BASED_RDPMC_EXITING            (1u << 11)
#define CPU_BASED_RDTSC_EXITING            (1u << 12)
#define CPU_BASED_CR3_LOAD_EXITING         (1u << 15)
#define CPU_BASED_CR3_STORE_EXITING        (1u << 16)
#define CPU_BASED_ACTIVATE_TERTIARY        (1u << 17)
#define CPU_BASED_CR8_LOAD_EXITING         (1u << 19)
#define CPU_BASED_CR8_STORE_EXITING        (1u << 20)
#define CPU_BASED_TPR_SHADOW               (1u << 21)
#define CPU_BASED_NMI_WINDOW_EXITING       (1u << 22)
#define CPU_BASED_MOV_DR_EXITING           (1u << 23)
#define CPU_BASED_UNCOND_IO_EXITING        (1u << 24)
#define CPU_BASED_USE_IO_BITMAPS           (1u << 25)
#define CPU_BASED_MONITOR_TRAP_FLAG        (1u << 27)
#define CPU_BASED_USE_MSR_BITMAPS          (1u << 28)
#define CPU_BASED_MONITOR_EXITING          (1u << 29)
#define CPU_BASED_PAUSE_EXITING            (1u << 30)
#define CPU_BASED_ACTIVATE_SECONDARY       (1u << 31)

/* Secondary processor-based controls (25.6.2) */
#define SECONDARY_VIRTUALIZE_APIC          (1u << 0)
#define SECONDARY_EPT                      (1u << 1)
#define SECONDARY_DESC_EXITING             (1u << 2)
#define SECONDARY_RDTSCP                   (1u << 3)
#define SECONDARY_VIRTUALIZE_X2APIC        (1u << 4)
#define SECONDARY_VPID                     (1u << 5)
#define SECONDARY_WBINVD_EXITING           (1u << 6)
#define SECONDARY_UNRESTRICTED_GUEST       (1u << 7)
#define SECONDARY_APIC_REGISTER_VIRT       (1u << 8)
#define SECONDARY_VIRTUAL_INTR_DELIVERY    (1u << 9)
#define SECONDARY_PAUSE_LOOP_EXITING       (1u << 10)
#define SECONDARY_RDRAND_EXITING           (1u << 11)
#define SECONDARY_INVPCID                  (1u << 12)
#define SECONDARY_VMFUNC                   (1u << 13)
#define SECONDARY_SHADOW_VMCS              (1u << 14)
#define SECONDARY_ENCLS_EXITING            (1u << 15)
#define SECONDARY_RDSEED_EXITING           (1u << 16)
#define SECONDARY_PML                      (1u << 17)
#define SECONDARY_EPT_VE                   (1u << 18)
#define SECONDARY_XSAVES                   (1u << 20)
#define SECONDARY_MBEC                     (1u << 22) /* mode-based execute control for EPT */
#define SECONDARY_TSC_SCALING              (1u << 25)

/* VM-exit controls (25.7.1) */
#define VM_EXIT_SAVE_DEBUG_CONTROLS        (1u << 2)
#define VM_EXIT_HOST_ADDR_SPACE_SIZE       (1u << 9)
#define VM_EXIT_LOAD_PERF_GLOBAL_CTRL      (1u << 12)
#define VM_EXIT_ACK_INTR_ON_EXIT           (1u << 15)
#define VM_EXIT_SAVE_PAT                   (1u << 18)
#define VM_EXIT_LOAD_PAT                   (1u << 19)
#define VM_EXIT_SAVE_EFER                  (1u << 20)
#define VM_EXIT_LOAD_EFER                  (1u << 21)
#define VM_EXIT_SAVE_PREEMPTION_TIMER      (1u << 22)
#define VM_EXIT_SAVE_PERF_GLOBAL_CTRL      (1u << 30)

/* VM-entry controls (25.8.1) */
#define VM_ENTRY_LOAD_DEBUG_CONTROLS       (1u << 2)
#define VM_ENTRY_IA32E_MODE                (1u << 9)
#define VM_ENTRY_SMM                       (1u << 10)
#define VM_ENTRY_DEACT_DUAL_MONITOR        (1u << 11)
#define VM_ENTRY_LOAD_PERF_GLOBAL_CTRL     (1u << 13)
#define VM_ENTRY_LOAD_PAT                  (1u << 14)
#define VM_ENTRY_LOAD_EFER                 (1u << 15)

/* IA32_VMX_EPT_VPID_CAP (A.10) */
#define EPT_CAP_EXEC_ONLY                  (1ull << 0)
#define EPT_CAP_PWL4                       (1ull << 6)
#define EPT_CAP_UC                         (1ull << 8)
#define EPT_CAP_WB                         (1ull << 14)
#define EPT_CAP_2M                         (1ull << 16)
#define EPT_CAP_1G                         (1ull << 17)
#define EPT_CAP_INVEPT                     (1ull << 20)
#define EPT_CAP_AD                         (1ull << 21)
#define EPT_CAP_ADV_EXIT_INFO              (1ull << 22) /* advanced VM-exit information for EPT violations */
#define EPT_CAP_INVEPT_SINGLE              (1ull << 25)
#define EPT_CAP_INVEPT_ALL                 (1ull << 26)
#define EPT_CAP_INVVPID                    (1ull << 32)
#define EPT_CAP_INVVPID_ADDR               (1ull << 40)
#define EPT_CAP_INVVPID_SINGLE             (1ull << 41)
#define EPT_CAP_INVVPID_ALL                (1ull << 42)
#define EPT_CAP_INVVPID_SINGLE_NONGLOBAL   (1ull << 43)

/* Activity states (25.4.2) */
#define GUEST_ACTIVITY_ACTIVE              0
#define GUEST_ACTIVITY_HLT                 1
#define GUEST_ACTIVITY_SHUTDOWN            2
#define GUEST_ACTIVITY_WAIT_SIPI           3

/* Interruptibility state (25.4.2) */
#define GUEST_INTR_STI                     (1u << 0)
#define GUEST_INTR_MOV_SS                  (1u << 1)
#define GUEST_INTR_SMI                     (1u << 2)
#define GUEST_INTR_NMI                     (1u << 3)
#define PENDING_DBG_BS                     (1ull << 14) /* pending debug exceptions: single step (24.4.2) */

/* VM-entry interruption information / exit interruption information (25.8.3, 25.9.2) */
#define INTR_INFO_VALID                    (1u << 31)
#define INTR_INFO_DELIVER_CODE             (1u << 11)
#define INTR_INFO_NMI_UNBLOCKED_IRET       (1u << 12)
#define INTR_INFO_TYPE_MASK                (7u << 8)
#define INTR_TYPE_EXT_INTR                 (0u << 8)
#define INTR_TYPE_NMI                      (2u << 8)
#define INTR_TYPE_HW_EXCEPTION             (3u << 8)
#define INTR_TYPE_SW_INTR                  (4u << 8)
#define INTR_TYPE_PRIV_SW_EXCEPTION        (5u << 8)
#define INTR_TYPE_SW_EXCEPTION             (6u << 8)
#define INTR_TYPE_OTHER                    (7u << 8)

#define VMX_EXIT_REASON_ENTRY_FAIL         (1u << 31)
#endif
