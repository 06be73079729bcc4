/* slots.h: copying slots between a ring's slot array and a flat buffer (internal to ipc/).
 * Both rings keep capacity (mask + 1) slots of IPC_SLOT_BYTES and index them modulo the
 * capacity, so a range of n slots is at most two pieces when it wraps. */
#ifndef IPC_SLOTS_H
#define IPC_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipc/ipc_assert.h"
#include "ipc/ring.h"

/* Copies n slots starting at index `at` (any free-running counter; only at & mask is used)
 * into the slots (to_ring) or out of them. n <= mask + 1. */
static inline void ipc_slots_copy(unsigned char *slots, uint32_t mask, uint64_t at, void *buf,
                                  uint32_t n, bool to_ring)
{
    IPC_ASSERT((mask & (mask + 1)) == 0); /* capacity mask + 1 is a power of two */
    IPC_ASSERT(n <= mask + 1);            /* one pass: no slot is copied twice */
    uint32_t first = (uint32_t)(at & mask);
    uint32_t run = mask + 1 - first;
    if (run > n)
        run = n;
    unsigned char *ring1 = slots + (size_t)first * IPC_SLOT_BYTES;
    unsigned char *flat2 = (unsigned char *)buf + (size_t)run * IPC_SLOT_BYTES;
    size_t bytes1 = (size_t)run * IPC_SLOT_BYTES;
    size_t bytes2 = (size_t)(n - run) * IPC_SLOT_BYTES;
    if (to_ring) {
        memcpy(ring1, buf, bytes1);
        memcpy(slots, flat2, bytes2);
    } else {
        memcpy(buf, ring1, bytes1);
        memcpy(flat2, slots, bytes2);
    }
}

#endif
