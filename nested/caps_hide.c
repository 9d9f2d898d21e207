/* hv.cfg's l1_vmx_hide=: the feature names and the capability bits each stands for (SDM Vol. 3D
 * Appendix A: A.3-A.6, A.10). */
#include "caps_hide.h"
#include <string.h>
#include "../vmx/vmx_bits.h"

#define MISC_ACTIVITY_HLT      (1ull << 6)
#define MISC_ACTIVITY_SHUTDOWN (1ull << 7)
#define MISC_ACTIVITY_SIPI     (1ull << 8)
#define MISC_VMWRITE_ANY       (1ull << 29)
#define MISC_INJECT_LEN0       (1ull << 30)

static const struct feature {
    const char *name;
    struct nested_hide bits;
} features[] = {
    /* pin-based (A.3.1) */
    {"virtual-nmis", {.pin = PIN_BASED_VIRTUAL_NMIS}},
    {"preemption-timer", {.pin = PIN_BASED_PREEMPTION_TIMER}},
    {"posted-interrupts", {.pin = PIN_BASED_POSTED_INTR}},
    /* primary processor-based (A.3.2) */
    {"tpr-shadow", {.proc = CPU_BASED_TPR_SHADOW}},
    {"nmi-window", {.proc = CPU_BASED_NMI_WINDOW_EXITING}},
    {"io-bitmaps", {.proc = CPU_BASED_USE_IO_BITMAPS}},
    {"mtf", {.proc = CPU_BASED_MONITOR_TRAP_FLAG}},
    {"msr-bitmaps", {.proc = CPU_BASED_USE_MSR_BITMAPS}},
    {"secondary-controls", {.proc = CPU_BASED_ACTIVATE_SECONDARY}},
    /* secondary processor-based (A.3.3) */
    {"apic-access", {.proc2 = SECONDARY_VIRTUALIZE_APIC}},
    {"ept", {.proc2 = SECONDARY_EPT}},
    {"desc-exiting", {.proc2 = SECONDARY_DESC_EXITING}},
    {"rdtscp", {.proc2 = SECONDARY_RDTSCP}},
    {"x2apic-mode", {.proc2 = SECONDARY_VIRTUALIZE_X2APIC}},
    {"vpid", {.proc2 = SECONDARY_VPID}},
    {"wbinvd-exiting", {.proc2 = SECONDARY_WBINVD_EXITING}},
    {"unrestricted-guest", {.proc2 = SECONDARY_UNRESTRICTED_GUEST}},
    {"apic-register-virt", {.proc2 = SECONDARY_APIC_REGISTER_VIRT}},
    {"virtual-intr-delivery", {.proc2 = SECONDARY_VIRTUAL_INTR_DELIVERY}},
    {"pause-loop-exiting", {.proc2 = SECONDARY_PAUSE_LOOP_EXITING}},
    {"invpcid", {.proc2 = SECONDARY_INVPCID}},
    {"vmfunc", {.proc2 = SECONDARY_VMFUNC}},
    {"shadow-vmcs", {.proc2 = SECONDARY_SHADOW_VMCS}},
    {"pml", {.proc2 = SECONDARY_PML}},
    {"ept-ve", {.proc2 = SECONDARY_EPT_VE}},
    {"xsaves", {.proc2 = SECONDARY_XSAVES}},
    {"tsc-scaling", {.proc2 = SECONDARY_TSC_SCALING}},
    /* VM-exit and VM-entry (A.4, A.5) */
    {"preemption-timer-save", {.exit = VM_EXIT_SAVE_PREEMPTION_TIMER}},
    {"ack-intr-on-exit", {.exit = VM_EXIT_ACK_INTR_ON_EXIT}},
    {"pat", {.exit = VM_EXIT_SAVE_PAT | VM_EXIT_LOAD_PAT, .entry = VM_ENTRY_LOAD_PAT}},
    {"efer", {.exit = VM_EXIT_SAVE_EFER | VM_EXIT_LOAD_EFER, .entry = VM_ENTRY_LOAD_EFER}},
    {"debug-controls", {.exit = VM_EXIT_SAVE_DEBUG_CONTROLS, .entry = VM_ENTRY_LOAD_DEBUG_CONTROLS}},
    /* IA32_VMX_EPT_VPID_CAP (A.10) */
    {"ept-ad", {.ept_vpid = EPT_CAP_AD}},
    {"ept-exec-only", {.ept_vpid = EPT_CAP_EXEC_ONLY}},
    {"ept-2m", {.ept_vpid = EPT_CAP_2M}},
    {"ept-1g", {.ept_vpid = EPT_CAP_1G}},
    {"invept-single", {.ept_vpid = EPT_CAP_INVEPT_SINGLE}},
    {"invvpid", {.ept_vpid = EPT_CAP_INVVPID | EPT_CAP_INVVPID_ADDR | EPT_CAP_INVVPID_SINGLE | EPT_CAP_INVVPID_ALL |
                             EPT_CAP_INVVPID_SINGLE_NONGLOBAL}},
    /* IA32_VMX_MISC (A.6) */
    {"activity-hlt", {.misc = MISC_ACTIVITY_HLT}},
    {"activity-shutdown", {.misc = MISC_ACTIVITY_SHUTDOWN}},
    {"activity-wait-sipi", {.misc = MISC_ACTIVITY_SIPI}},
    {"vmwrite-any", {.misc = MISC_VMWRITE_ANY}},
    {"inject-len0", {.misc = MISC_INJECT_LEN0}},
};
#define NFEATURES (sizeof(features) / sizeof(features[0]))

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static int is_sep(char c) { return c == ',' || c == ' ' || c == '\t'; }

static const struct feature *lookup(const char *s, size_t n)
{
    for (size_t i = 0; i < NFEATURES; i++) {
        const char *w = features[i].name;
        size_t k = 0;
        while (k < n && w[k] && lower(s[k]) == w[k])
            k++;
        if (k == n && !w[k])
            return &features[i];
    }
    return NULL;
}

static void add(struct nested_hide *h, const struct nested_hide *b)
{
    h->pin |= b->pin, h->proc |= b->proc, h->proc2 |= b->proc2, h->exit |= b->exit, h->entry |= b->entry;
    h->ept_vpid |= b->ept_vpid, h->misc |= b->misc;
}

unsigned nested_hide_parse(const char *list, struct nested_hide *h, char *bad, size_t bad_len)
{
    unsigned unknown = 0;
    if (bad_len)
        bad[0] = 0;
    for (const char *p = list; *p;) {
        while (*p && is_sep(*p))
            p++;
        size_t n = 0;
        while (p[n] && !is_sep(p[n]))
            n++;
        if (!n)
            break;
        const struct feature *f = lookup(p, n);
        if (f) {
            add(h, &f->bits);
        } else if (!unknown++ && bad_len) {
            size_t k = n < bad_len - 1 ? n : bad_len - 1;
            memcpy(bad, p, k);
            bad[k] = 0;
        }
        p += n;
    }
    return unknown;
}

void nested_hide_apply(const struct nested_hide *h, struct vmx_msrs *hw)
{
    hw->pinbased &= ~((uint64_t)h->pin << 32);
    hw->procbased &= ~((uint64_t)h->proc << 32);
    hw->procbased2 &= ~((uint64_t)h->proc2 << 32);
    hw->exit &= ~((uint64_t)h->exit << 32);
    hw->entry &= ~((uint64_t)h->entry << 32);
    hw->ept_vpid &= ~h->ept_vpid;
    hw->misc &= ~h->misc;
}

unsigned nested_hide_lacking(const struct vmx_msrs *hw, char *buf, size_t len)
{
    uint32_t proc = (uint32_t)(hw->procbased >> 32);
    uint32_t proc2 = proc & CPU_BASED_ACTIVATE_SECONDARY ? (uint32_t)(hw->procbased2 >> 32) : 0;
    uint64_t ev = proc2 & (SECONDARY_EPT | SECONDARY_VPID) ? hw->ept_vpid : 0; /* A.10: else no such MSR */
    unsigned count = 0;
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < NFEATURES; i++) {
        const struct nested_hide *b = &features[i].bits;
        bool has = ((uint32_t)(hw->pinbased >> 32) & b->pin) == b->pin && (proc & b->proc) == b->proc &&
                   (proc2 & b->proc2) == b->proc2 && ((uint32_t)(hw->exit >> 32) & b->exit) == b->exit &&
                   ((uint32_t)(hw->entry >> 32) & b->entry) == b->entry && (ev & b->ept_vpid) == b->ept_vpid &&
                   (hw->misc & b->misc) == b->misc;
        if (has)
            continue;
        count++;
        for (const char *s = count > 1 ? ", " : ""; *s && at + 1 < len; s++)
            buf[at++] = *s;
        for (const char *s = features[i].name; *s && at + 1 < len; s++)
            buf[at++] = *s;
        if (len)
            buf[at] = 0;
    }
    return count;
}
