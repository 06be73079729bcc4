/* bcast.c: broadcast ring; the protocol and its ordering are described in bcast.h. */
#include "ipc/bcast.h"

#include <string.h>

#include <urcu/arch.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/ipc_assert.h"
#include "ipc/slots.h"

#define BCAST_ATTACHED 1u

static uint64_t bcast_max(uint64_t a, uint64_t b)
{
    uint64_t m = a > b ? a : b;
    IPC_ASSERT(m >= a && m >= b);
    return m;
}

static bool bcast_slots_valid(uint32_t slots)
{
    return slots >= 1 && slots <= IPC_BCAST_SLOTS_MAX && (slots & (slots - 1)) == 0;
}

static struct ipc_bcast_cursor *bcast_cursor(struct ipc_bcast *b, uint32_t c)
{
    IPC_ASSERT(c < IPC_BCAST_CURSORS_MAX);
    IPC_ASSERT((b->consumers_mask >> c) & 1u);
    return &b->cursors[c];
}

size_t ipc_bcast_bytes(uint32_t slots)
{
    IPC_ASSERT(bcast_slots_valid(slots));
    size_t bytes = sizeof(struct ipc_bcast) + (size_t)slots * IPC_SLOT_BYTES;
    return bytes;
}

struct ipc_bcast *ipc_bcast_init(void *mem, uint32_t slots, uint64_t consumers_mask)
{
    IPC_ASSERT(mem != NULL);
    IPC_ASSERT(((uintptr_t)mem % IPC_LINE_BYTES) == 0);
    IPC_ASSERT(bcast_slots_valid(slots));
    IPC_ASSERT(__builtin_popcountll(consumers_mask) <= IPC_BCAST_CONSUMERS_MAX);
    struct ipc_bcast *b = mem;
    memset(b, 0, sizeof(*b));
    b->mask = slots - 1;
    b->consumers_mask = consumers_mask;
    for (uint32_t c = 0; c < IPC_BCAST_CURSORS_MAX; c++) {
        if ((consumers_mask >> c) & 1u)
            b->cursors[c].state = BCAST_ATTACHED;
    }
    IPC_ASSERT(b->head == 0); /* empty */
    IPC_ASSERT(b->reserve == 0);
    IPC_ASSERT(ipc_bcast_capacity(b) == slots);
    cmm_smp_mb(); /* belt and braces: users are forked later, fork is a full barrier */
    return b;
}

uint32_t ipc_bcast_capacity(const struct ipc_bcast *b)
{
    IPC_ASSERT(bcast_slots_valid(b->mask + 1));
    return b->mask + 1;
}

uint64_t ipc_bcast_head(const struct ipc_bcast *b)
{
    uint64_t head = uatomic_read(&b->head);
    IPC_ASSERT(head <= uatomic_read(&b->reserve)); /* the reserve is set before the head */
    return head;
}

bool ipc_bcast_attached(const struct ipc_bcast *b, uint32_t c)
{
    IPC_ASSERT(c < IPC_BCAST_CURSORS_MAX);
    IPC_ASSERT((b->consumers_mask >> c) & 1u); /* only a consumer has a cursor */
    return (uatomic_read(&b->cursors[c].state) & BCAST_ATTACHED) != 0;
}

/* Producer: the lowest pos of the attached cursors (head if none), cached in min_cache. */
static uint64_t bcast_scan(struct ipc_bcast *b, uint64_t head)
{
    IPC_ASSERT(head == CMM_LOAD_SHARED(b->head)); /* producer only: head is its own */
    b->gen_seen = uatomic_read(&b->attach_gen);
    /* attach_gen before the states: a re-attach stores its state before bumping attach_gen
     * (uatomic_add_return is a full barrier), so a generation we saw implies its state. */
    cmm_smp_rmb();
    uint64_t min = head;
    for (uint32_t c = 0; c < IPC_BCAST_CURSORS_MAX; c++) {
        if (!((b->consumers_mask >> c) & 1u))
            continue;
        uint32_t st = uatomic_read(&b->cursors[c].state);
        /* state before pos: pairs with the cmm_smp_wmb() between the pos and state stores in
         * ipc_bcast_reattach, so an attached state comes with its resume position. */
        cmm_smp_rmb();
        if (!(st & BCAST_ATTACHED))
            continue;
        uint64_t pos = uatomic_read(&b->cursors[c].pos);
        if (pos < min)
            min = pos;
    }
    /* Acquire of the cursors: the slot stores that follow must not pass these loads
     * (load->store needs a full barrier). Pairs with the cmm_smp_mb() before the pos store in
     * ipc_bcast_read. */
    cmm_smp_mb();
    IPC_ASSERT(min <= head); /* no cursor is ahead of the producer */
    b->min_cache = min;
    return min;
}

/* Producer: detaches attached consumers that are a full ring behind; returns how many. */
static uint32_t bcast_detach_laggards(struct ipc_bcast *b, uint64_t head)
{
    uint64_t cap = (uint64_t)b->mask + 1;
    IPC_ASSERT(head == CMM_LOAD_SHARED(b->head)); /* producer only */
    uint32_t detached = 0;
    for (uint32_t c = 0; c < IPC_BCAST_CURSORS_MAX; c++) {
        if (!((b->consumers_mask >> c) & 1u))
            continue;
        struct ipc_bcast_cursor *cur = &b->cursors[c];
        uint32_t st = uatomic_read(&cur->state);
        cmm_smp_rmb(); /* state before pos, as in bcast_scan */
        if (!(st & BCAST_ATTACHED) || head - uatomic_read(&cur->pos) < cap)
            continue;
        /* The CAS fails if the consumer re-attached (new generation) or detached itself. */
        if (uatomic_cmpxchg(&cur->state, st, st & ~BCAST_ATTACHED) == st) {
            detached++;
            CMM_STORE_SHARED(b->detached_events, b->detached_events + 1);
        }
    }
    IPC_ASSERT(detached <= IPC_BCAST_CONSUMERS_MAX);
    return detached;
}

/* Producer: how many of n slots may be written at head without overwriting a slot that an
 * attached consumer has not read. */
static uint32_t bcast_room(struct ipc_bcast *b, uint64_t head, uint32_t n, unsigned flags)
{
    uint64_t cap = (uint64_t)b->mask + 1;
    IPC_ASSERT(n >= 1);
    IPC_ASSERT(n <= cap);
    IPC_ASSERT(b->min_cache <= head);
    if (b->min_cache + cap >= head + n)
        return n; /* min_cache is a lower bound, so this is safe without a rescan */
    uint64_t min = bcast_scan(b, head);
    if (min + cap < head + n && (flags & IPC_BCAST_DETACH_LAGGARDS)) {
        if (bcast_detach_laggards(b, head) > 0)
            min = bcast_scan(b, head);
    }
    if (min + cap <= head)
        return 0;
    uint64_t room = min + cap - head;
    IPC_ASSERT(room <= cap);
    return room < n ? (uint32_t)room : n;
}

uint32_t ipc_bcast_publish(struct ipc_bcast *b, const void *slots, uint32_t n, unsigned flags)
{
    IPC_ASSERT(slots != NULL || n == 0);
    IPC_ASSERT((flags & ~IPC_BCAST_DETACH_LAGGARDS) == 0);
    uint64_t cap = (uint64_t)b->mask + 1;
    if (n > cap)
        n = (uint32_t)cap;
    if (n == 0)
        return 0;
    uint64_t head = CMM_LOAD_SHARED(b->head); /* our own index */
    uint32_t room = bcast_room(b, head, n, flags);
    if (room == 0)
        return 0;
    IPC_ASSERT(room <= n); /* room before the grab */
    /* Never lower the reserve: an earlier incarnation killed between its reserve store and its
     * head store may have overwritten slots up to its reserve, and a consumer still copying
     * them must see that reserve (bcast.h, torn-read guard). */
    uint64_t reserve_floor = CMM_LOAD_SHARED(b->reserve); /* only producers store it */
    uatomic_set(&b->reserve, bcast_max(reserve_floor, head + room));
    /* Orders the reserve store before (1) the slot stores: pairs with the cmm_smp_rmb()
     * between a consumer's slot copy and its reserve load (torn-read guard); and (2) the
     * attach_gen load below: Dekker pair with the uatomic_add_return() in
     * ipc_bcast_reattach. */
    cmm_smp_mb();
    if (uatomic_read(&b->attach_gen) != b->gen_seen) {
        uint64_t min = bcast_scan(b, head);
        uint64_t limit = min + cap > head ? min + cap - head : 0;
        if (limit < room) {
            /* A consumer re-attached behind us. Shrinking the reservation before any slot
             * is written is safe; a consumer that saw the larger one reports lagged. */
            room = (uint32_t)limit;
            uatomic_set(&b->reserve, bcast_max(reserve_floor, head + room));
            if (room == 0)
                return 0;
        }
    }
    IPC_ASSERT(uatomic_read(&b->reserve) >= head + room); /* reserved before written */
    ipc_slots_copy(b->slots, b->mask, head, (void *)(uintptr_t)slots, room, true);
    /* Release of head: slot stores before the new head. Pairs with the cmm_smp_rmb() after
     * the head load in ipc_bcast_read / ipc_bcast_empty. */
    cmm_smp_wmb();
    uatomic_set(&b->head, head + room);
    return room;
}

/* Consumer: reports a lag. The cursor moves to the current head; missed is exactly the
 * distance, so nothing is skipped without being counted. The consumer stays detached until
 * ipc_bcast_reattach. */
static struct ipc_bcast_read_result bcast_lagged(struct ipc_bcast *b, struct ipc_bcast_cursor *cur,
                                                 uint32_t st)
{
    if (st & BCAST_ATTACHED) /* overrun while attached: stop gating (may already be done) */
        (void)uatomic_cmpxchg(&cur->state, st, st & ~BCAST_ATTACHED);
    /* detached now: by the CAS above or by the producer; only this consumer re-attaches */
    IPC_ASSERT(!(uatomic_read(&cur->state) & BCAST_ATTACHED));
    uint64_t pos = CMM_LOAD_SHARED(cur->pos);
    uint64_t head = uatomic_read(&b->head);
    IPC_ASSERT(head >= pos);
    /* No slot was read, so there is nothing to order before this store. */
    uatomic_set(&cur->pos, head);
    CMM_STORE_SHARED(cur->lagged_events, cur->lagged_events + 1);
    CMM_STORE_SHARED(cur->missed_total, cur->missed_total + (head - pos));
    struct ipc_bcast_read_result res = {.n = 0, .lagged = true, .missed = head - pos};
    return res;
}

struct ipc_bcast_read_result ipc_bcast_read(struct ipc_bcast *b, uint32_t c, void *out,
                                            uint32_t max)
{
    IPC_ASSERT(out != NULL || max == 0);
    struct ipc_bcast_cursor *cur = bcast_cursor(b, c);
    struct ipc_bcast_read_result res = {.n = 0, .lagged = false, .missed = 0};
    uint64_t cap = (uint64_t)b->mask + 1;
    uint32_t st = uatomic_read(&cur->state);
    if (!(st & BCAST_ATTACHED))
        return bcast_lagged(b, cur, st);
    uint64_t pos = CMM_LOAD_SHARED(cur->pos); /* our own cursor */
    uint64_t head = uatomic_read(&b->head);
    /* Acquire of head: pairs with the cmm_smp_wmb() before the head store in publish. */
    cmm_smp_rmb();
    uint64_t avail = head - pos;
    if (avail > cap) /* overrun before our re-attach took effect */
        return bcast_lagged(b, cur, st);
    uint32_t n = avail < max ? (uint32_t)avail : max;
    if (n == 0)
        return res;
    IPC_ASSERT(pos + n <= head); /* only published slots are read */
    ipc_slots_copy(b->slots, b->mask, pos, out, n, false);
    /* Slot loads before the reserve load: pairs with the cmm_smp_mb() after the reserve store
     * in publish. If the producer began overwriting any slot we copied, we see its reserve. */
    cmm_smp_rmb();
    if (uatomic_read(&b->reserve) > pos + cap)
        return bcast_lagged(b, cur, st);
    /* Release of pos: slot loads complete before the producer may reuse the slots. Pairs with
     * the cmm_smp_mb() at the end of bcast_scan. */
    cmm_smp_mb();
    uatomic_set(&cur->pos, pos + n);
    res.n = n;
    IPC_ASSERT(!res.lagged);
    IPC_ASSERT(res.n <= max);
    return res;
}

void ipc_bcast_reattach(struct ipc_bcast *b, uint32_t c)
{
    struct ipc_bcast_cursor *cur = bcast_cursor(b, c);
    uint32_t st = uatomic_read(&cur->state);
    if (st & BCAST_ATTACHED)
        return;
    IPC_ASSERT(uatomic_read(&cur->pos) <= uatomic_read(&b->head)); /* resumes at or behind */
    /* pos (left by the lagged read) before the attached state: pairs with the cmm_smp_rmb()
     * between the state and pos loads in bcast_scan. */
    cmm_smp_wmb();
    /* A new generation, so that a producer CAS based on an older scan fails. Only the
     * attached -> detached transition is done by others, so a plain store is enough here. */
    uatomic_set(&cur->state, (((st >> 1) + 1) << 1) | BCAST_ATTACHED);
    /* Full barrier on both sides (liburcu: uatomic_add_return implies cmm_smp_mb()): Dekker
     * pair with the cmm_smp_mb() between the reserve store and the attach_gen load in
     * publish. Either the producer sees the new generation and gates on us, or our next read
     * sees the reserve that overran us and reports lagged. */
    (void)uatomic_add_return(&b->attach_gen, 1);
}

void ipc_bcast_detach(struct ipc_bcast *b, uint32_t c)
{
    struct ipc_bcast_cursor *cur = bcast_cursor(b, c);
    /* Only a detach can change an attached state, so the second try always settles it. */
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t st = uatomic_read(&cur->state);
        if (!(st & BCAST_ATTACHED))
            return;
        if (uatomic_cmpxchg(&cur->state, st, st & ~BCAST_ATTACHED) == st)
            return;
    }
    IPC_ASSERT(!(uatomic_read(&cur->state) & BCAST_ATTACHED));
}

bool ipc_bcast_empty(const struct ipc_bcast *b, uint32_t c)
{
    IPC_ASSERT(c < IPC_BCAST_CURSORS_MAX);
    IPC_ASSERT((b->consumers_mask >> c) & 1u); /* only a consumer has a cursor */
    const struct ipc_bcast_cursor *cur = &b->cursors[c];
    if (!(uatomic_read(&cur->state) & BCAST_ATTACHED))
        return false;
    uint64_t head = uatomic_read(&b->head);
    cmm_smp_rmb(); /* acquire of head, as in ipc_bcast_read */
    return head == CMM_LOAD_SHARED(cur->pos);
}
