/* Test-and-test-and-set spinlock for the few structures CPUs share in root mode. */
#ifndef LIB_SPINLOCK_H
#define LIB_SPINLOCK_H
typedef struct { volatile int locked; } spinlock_t;
static inline void spin_lock(spinlock_t *l)
{
    while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
        while (l->locked)
            __builtin_ia32_pause();
}
static inline void spin_unlock(spinlock_t *l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE); }
#endif
