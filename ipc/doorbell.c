/* doorbell.c: futex doorbell; the protocol is described in doorbell.h. */
#include "ipc/doorbell.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <urcu/arch.h>
#include <urcu/futex.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/ipc_assert.h"

#define DOORBELL_AWAKE    0
#define DOORBELL_SLEEPING 1

void ipc_doorbell_init(struct ipc_doorbell *d)
{
    IPC_ASSERT(d != NULL);
    IPC_ASSERT(((uintptr_t)d % IPC_LINE_BYTES) == 0); /* its own line: no false sharing */
    memset(d, 0, sizeof(*d));
    IPC_ASSERT(d->word == DOORBELL_AWAKE);
}

void ipc_doorbell_ring(struct ipc_doorbell *d)
{
    /* The message stores (ring head) before the word load: Dekker pair with the cmm_smp_mb()
     * in ipc_doorbell_prepare. */
    cmm_smp_mb();
    int32_t word = uatomic_read(&d->word);
    IPC_ASSERT(word == DOORBELL_AWAKE || word == DOORBELL_SLEEPING);
    if (word != DOORBELL_SLEEPING)
        return;
    /* Only the producer whose CAS wins makes the syscall. */
    if (uatomic_cmpxchg(&d->word, DOORBELL_SLEEPING, DOORBELL_AWAKE) != DOORBELL_SLEEPING)
        return;
    uatomic_add(&d->wake_syscalls, 1);
    int rc = futex_async(&d->word, FUTEX_WAKE, 1, NULL, NULL, 0);
    IPC_ASSERT(rc >= 0); /* only EFAULT/EINVAL can fail: a bad address is a bug */
    IPC_ASSERT(rc <= 1); /* one sleeper per doorbell: its owner */
}

void ipc_doorbell_prepare(struct ipc_doorbell *d)
{
    IPC_ASSERT(d != NULL);
    uatomic_set(&d->word, DOORBELL_SLEEPING);
    /* The word store before the caller's ring re-check loads: Dekker pair with the
     * cmm_smp_mb() in ipc_doorbell_ring. */
    cmm_smp_mb();
}

void ipc_doorbell_cancel(struct ipc_doorbell *d)
{
    IPC_ASSERT(d != NULL);
    /* Nothing to order: a producer that still sees SLEEPING only makes a spare wake. */
    uatomic_set(&d->word, DOORBELL_AWAKE);
}

int ipc_doorbell_wait(struct ipc_doorbell *d, uint64_t timeout_ns)
{
    IPC_ASSERT(d != NULL);
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                          .tv_nsec = (long)(timeout_ns % 1000000000u)};
    IPC_ASSERT(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L); /* a valid futex timeout */
    CMM_STORE_SHARED(d->wait_syscalls, CMM_LOAD_SHARED(d->wait_syscalls) + 1);
    /* FUTEX_WAIT sleeps only while the word is still SLEEPING (checked atomically by the
     * kernel), so a ring that cleared it after our re-check makes this return at once. */
    int rc = futex_async(&d->word, FUTEX_WAIT, DOORBELL_SLEEPING, timeout_ns ? &ts : NULL, NULL, 0);
    int err = rc < 0 ? errno : 0;
    uatomic_set(&d->word, DOORBELL_AWAKE);
    if (rc == 0 || err == EAGAIN || err == EINTR)
        return 0;
    IPC_ASSERT(err == ETIMEDOUT); /* EFAULT/EINVAL would be a bug */
    return -ETIMEDOUT;
}

uint64_t ipc_doorbell_wake_syscalls(const struct ipc_doorbell *d)
{
    IPC_ASSERT(d != NULL);
    return uatomic_read(&d->wake_syscalls);
}

uint64_t ipc_doorbell_wait_syscalls(const struct ipc_doorbell *d)
{
    IPC_ASSERT(d != NULL);
    return uatomic_read(&d->wait_syscalls);
}
