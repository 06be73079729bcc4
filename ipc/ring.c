/* ring.c: SPSC ring; the ordering contract is in ring.h. */
#include "ipc/ring.h"

#include <string.h>

#include <urcu/arch.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/ipc_assert.h"
#include "ipc/slots.h"

static bool ring_slots_valid(uint32_t slots)
{
    _Static_assert(IPC_RING_SLOTS_MAX <= UINT32_MAX / 2,
                   "free-running 32-bit indices tell full from empty");
    return slots >= 1 && slots <= IPC_RING_SLOTS_MAX && (slots & (slots - 1)) == 0;
}

size_t ipc_ring_bytes(uint32_t slots)
{
    IPC_ASSERT(ring_slots_valid(slots));
    size_t bytes = sizeof(struct ipc_ring) + (size_t)slots * IPC_SLOT_BYTES;
    return bytes;
}

struct ipc_ring *ipc_ring_init(void *mem, uint32_t slots)
{
    IPC_ASSERT(mem != NULL);
    IPC_ASSERT(((uintptr_t)mem % IPC_LINE_BYTES) == 0);
    IPC_ASSERT(ring_slots_valid(slots));
    struct ipc_ring *r = mem;
    memset(r, 0, sizeof(*r));
    r->mask_p = slots - 1;
    r->mask_c = slots - 1;
    IPC_ASSERT(r->head == r->tail); /* empty */
    IPC_ASSERT(ipc_ring_capacity(r) == slots);
    /* Publishes the initialised header to processes forked later; they inherit the mapping
     * after fork, which is itself a full barrier, so this is only belt and braces. */
    cmm_smp_mb();
    return r;
}

uint32_t ipc_ring_capacity(const struct ipc_ring *r)
{
    IPC_ASSERT(ring_slots_valid(r->mask_c + 1));
    return r->mask_c + 1;
}

uint32_t ipc_ring_push(struct ipc_ring *r, const void *slots, uint32_t n)
{
    IPC_ASSERT(slots != NULL || n == 0);
    uint32_t mask = r->mask_p;
    uint32_t cap = mask + 1;
    IPC_ASSERT(ring_slots_valid(cap));        /* a corrupted header must not steer the copy */
    uint32_t head = CMM_LOAD_SHARED(r->head); /* our own index: no ordering needed */
    IPC_ASSERT(head - r->tail_cache <= cap);  /* the cached tail is a lower bound */
    uint32_t free_slots = cap - (head - r->tail_cache);
    if (free_slots < n) {
        r->tail_cache = uatomic_read(&r->tail);
        /* Acquire of tail: the consumer's slot reads happened before it published tail, so
         * the slot stores below must not be performed before this load. Load->store order
         * needs a full barrier in liburcu's vocabulary. Pairs with the cmm_smp_mb() before
         * the tail store in ipc_ring_pop. */
        cmm_smp_mb();
        free_slots = cap - (head - r->tail_cache);
        IPC_ASSERT(free_slots <= cap);
    }
    if (n > free_slots)
        n = free_slots;
    if (n == 0)
        return 0;
    IPC_ASSERT(n <= free_slots); /* room before the grab: never overwrite an unread slot */
    ipc_slots_copy(r->slots, mask, head, (void *)(uintptr_t)slots, n, true);
    /* Release of head: the slot stores above become visible before the new head. Pairs with
     * the cmm_smp_rmb() after the head load in ipc_ring_pop / ipc_ring_empty. */
    cmm_smp_wmb();
    uatomic_set(&r->head, head + n);
    return n;
}

uint32_t ipc_ring_pop(struct ipc_ring *r, void *out, uint32_t max)
{
    IPC_ASSERT(out != NULL || max == 0);
    uint32_t mask = r->mask_c;
    IPC_ASSERT(ring_slots_valid(mask + 1));
    uint32_t tail = CMM_LOAD_SHARED(r->tail); /* our own index */
    uint32_t avail = r->head_cache - tail;
    if (avail < max) {
        r->head_cache = uatomic_read(&r->head);
        /* Acquire of head: slot loads below must not be satisfied before this load. Pairs
         * with the cmm_smp_wmb() before the head store in ipc_ring_push. */
        cmm_smp_rmb();
        avail = r->head_cache - tail;
        IPC_ASSERT(avail <= mask + 1);
    }
    uint32_t n = avail < max ? avail : max;
    if (n == 0)
        return 0;
    IPC_ASSERT(n <= mask + 1); /* never read a slot twice in one pop */
    ipc_slots_copy(r->slots, mask, tail, out, n, false);
    /* Release of tail: the slot loads above complete before the producer can see the slots
     * as free and overwrite them (load->store: full barrier). Pairs with the cmm_smp_mb()
     * after the tail load in ipc_ring_push. */
    cmm_smp_mb();
    uatomic_set(&r->tail, tail + n);
    return n;
}

bool ipc_ring_empty(const struct ipc_ring *r)
{
    uint32_t head = uatomic_read(&r->head);
    /* Acquire of head, pairs with the cmm_smp_wmb() in ipc_ring_push; a caller that sees
     * "not empty" goes on to pop. */
    cmm_smp_rmb();
    uint32_t tail = CMM_LOAD_SHARED(r->tail);
    IPC_ASSERT(head - tail <= r->mask_c + 1); /* the consumer calls it: tail is its own */
    return head == tail;
}

uint32_t ipc_ring_count(const struct ipc_ring *r)
{
    IPC_ASSERT(ring_slots_valid(r->mask_c + 1)); /* any process reads it: a sane header */
    uint32_t tail = uatomic_read(&r->tail);
    uint32_t head = uatomic_read(&r->head);
    uint32_t n = head - tail;
    /* The two loads are not atomic together: pushes between them can make head - tail exceed
     * the capacity, so clamp instead of asserting. */
    return n > r->mask_c + 1 ? r->mask_c + 1 : n;
}
