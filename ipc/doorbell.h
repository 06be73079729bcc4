/* doorbell.h: one futex word per process, so a consumer with nothing to do sleeps and its
 * producers wake it with at most one FUTEX_WAKE, and a busy pool makes no syscalls at all.
 *
 * Protocol (consumer = the doorbell's owner, producers = everyone who pushes to it):
 *   consumer: ipc_doorbell_prepare(d)       word = SLEEPING, full barrier
 *             re-check every inbound ring   (ipc_ring_empty / ipc_bcast_empty)
 *             something there -> ipc_doorbell_cancel(d) and go on working
 *             nothing         -> ipc_doorbell_wait(d, timeout)
 *   producer: push, then ipc_doorbell_ring(d): full barrier, and only if word == SLEEPING a
 *             CAS SLEEPING -> AWAKE and one FUTEX_WAKE.
 * The two full barriers form a Dekker pair: either the consumer's re-check sees the message, or
 * the producer sees SLEEPING and wakes it; FUTEX_WAIT itself only sleeps while the word is still
 * SLEEPING, so a wake between the re-check and the wait is not lost.
 *
 * The word is a process-shared futex (FUTEX_WAIT/FUTEX_WAKE without FUTEX_PRIVATE_FLAG), via
 * liburcu's futex_async. Several producers may ring concurrently; only the one that wins the
 * CAS makes the syscall.
 */
#ifndef IPC_DOORBELL_H
#define IPC_DOORBELL_H

#include <stdalign.h>
#include <stdint.h>

#include "ipc/ring.h"

struct ipc_doorbell {
    alignas(IPC_LINE_BYTES) int32_t word; /* 0 awake, 1 consumer announced sleep */
    uint32_t reserved0;
    uint64_t wake_syscalls; /* FUTEX_WAKE calls made by producers (atomic add) */
    uint64_t wait_syscalls; /* FUTEX_WAIT calls made by the consumer */
};

_Static_assert(sizeof(struct ipc_doorbell) == IPC_LINE_BYTES, "one line per doorbell");

/* Sets the doorbell awake with zeroed counters (while nobody uses it). */
void ipc_doorbell_init(struct ipc_doorbell *d);
/* Producer, after publishing: wakes the consumer if, and only if, it announced sleep. */
void ipc_doorbell_ring(struct ipc_doorbell *d);
/* Consumer: announces sleep; must then re-check its rings and call cancel or wait. */
void ipc_doorbell_prepare(struct ipc_doorbell *d);
/* Consumer: withdraws the announcement (work was found on the re-check). */
void ipc_doorbell_cancel(struct ipc_doorbell *d);
/* Consumer: sleeps until rung or timeout_ns elapsed (0 = no timeout), and leaves the doorbell
 * awake. Returns 0 (woken, or the word already changed, or EINTR: a spurious wake-up is fine)
 * or -ETIMEDOUT. */
int ipc_doorbell_wait(struct ipc_doorbell *d, uint64_t timeout_ns);
uint64_t ipc_doorbell_wake_syscalls(const struct ipc_doorbell *d);
uint64_t ipc_doorbell_wait_syscalls(const struct ipc_doorbell *d);

#endif
