/* ring.h: bounded single-producer single-consumer ring of IPC_SLOT_BYTES slots, shared between
 * processes (it lives in a MAP_SHARED mapping and holds no pointers).
 *
 * Contract (after Linux Documentation/core-api/circular-buffers.rst and rigtorp/SPSCQueue):
 * - capacity is a power of two in 1..IPC_RING_SLOTS_MAX; head and tail are free-running 32-bit
 *   counters, the slot of index i is i & (capacity - 1).
 * - head (producer-written) and tail (consumer-written) sit on separate cache lines; each side
 *   keeps a cached copy of the other's index on its own line and refreshes it only when the
 *   cached value says "full" / "empty", so a streaming pair touches the other's line rarely.
 * - the producer writes the slots first and then publishes head with a release store; the
 *   consumer loads head with an acquire before it reads the slots. A producer killed at any
 *   instruction therefore never exposes a half-written slot: unpublished slots are simply lost.
 * - the consumer copies the slots out first and then publishes tail with a release store; the
 *   producer loads tail with an acquire before it overwrites a slot.
 *
 * Context: ipc_ring_push is producer-only, ipc_ring_pop / ipc_ring_empty consumer-only; at most
 * one producer process and one consumer process at a time (a restarted producer or consumer
 * takes over where the dead one stopped). ipc_ring_init only while nobody uses the ring.
 */
#ifndef IPC_RING_H
#define IPC_RING_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One slot: the Paxos core's struct px_msg is exactly this size. */
#define IPC_SLOT_BYTES 64
/* Cache-line stride used to separate producer and consumer data. 128, not 64, because x86
 * prefetches lines in adjacent pairs (liburcu's CAA_CACHE_LINE_SIZE is 128 for the same
 * reason): two fields 64 bytes apart would still ping-pong. */
#define IPC_LINE_BYTES 128
/* Largest ring: 65536 slots = 4 MiB per ring; with 65 endpoints there are 4160 directed rings, so
 * anything larger is not a sensible shared-memory budget. */
#define IPC_RING_SLOTS_MAX 65536u

struct ipc_ring {
    /* Producer line: written only by the producer. */
    alignas(IPC_LINE_BYTES) uint32_t head; /* next index to write; release-published */
    uint32_t tail_cache;                   /* producer's last seen tail (lower bound) */
    uint32_t mask_p;                       /* capacity - 1, read-only after init */
    /* Consumer line: written only by the consumer. */
    alignas(IPC_LINE_BYTES) uint32_t tail; /* next index to read; release-published */
    uint32_t head_cache;                   /* consumer's last seen head (lower bound) */
    uint32_t mask_c;                       /* capacity - 1, read-only after init */
    /* The slots follow the struct: capacity * IPC_SLOT_BYTES bytes. */
    alignas(IPC_LINE_BYTES) unsigned char slots[];
};

_Static_assert(offsetof(struct ipc_ring, tail) == IPC_LINE_BYTES, "tail on its own line");
_Static_assert(offsetof(struct ipc_ring, slots) == 2 * IPC_LINE_BYTES, "slots after the lines");
_Static_assert(sizeof(struct ipc_ring) == 2 * IPC_LINE_BYTES, "ring header is two lines");
_Static_assert((IPC_RING_SLOTS_MAX & (IPC_RING_SLOTS_MAX - 1)) == 0, "power of two");

/* Bytes needed for a ring of `slots` slots (header + slots). slots: power of two, 1..MAX. */
size_t ipc_ring_bytes(uint32_t slots);
/* Initialises an empty ring in `mem` (IPC_LINE_BYTES-aligned, ipc_ring_bytes(slots) long). */
struct ipc_ring *ipc_ring_init(void *mem, uint32_t slots);
/* Producer: copies up to n slots from `slots` (n * IPC_SLOT_BYTES bytes) into the ring and
 * publishes them; returns how many fit (0 when full). Never blocks. */
uint32_t ipc_ring_push(struct ipc_ring *r, const void *slots, uint32_t n);
/* Consumer: copies up to max published slots into `out` and frees them; returns the count
 * (0 when empty). Never blocks. */
uint32_t ipc_ring_pop(struct ipc_ring *r, void *out, uint32_t max);
/* Consumer: true if nothing is published. Used for the doorbell re-check after
 * ipc_doorbell_prepare, so it always reloads head (never trusts the cache when it says empty). */
bool ipc_ring_empty(const struct ipc_ring *r);
uint32_t ipc_ring_capacity(const struct ipc_ring *r);
/* Published but not yet popped slots, as seen by any process (a snapshot, for statistics). */
uint32_t ipc_ring_count(const struct ipc_ring *r);

#endif
