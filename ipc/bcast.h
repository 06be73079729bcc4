/* bcast.h: broadcast ring, one producer and up to IPC_BCAST_CONSUMERS_MAX consumers, each with
 * its own read cursor on its own cache line. Shared between processes; holds no pointers.
 *
 * Consumer index: a cursor index c is the consumer's endpoint id (0..IPC_BCAST_CURSORS_MAX-1).
 * The ring has IPC_BCAST_CURSORS_MAX cursors, so endpoint ids map one to one; the producer's
 * own cursor (and any index outside the init mask) is never attached. At most
 * IPC_BCAST_CONSUMERS_MAX cursors are in use.
 *
 * Protocol (sequence numbers are free-running 64-bit, slot = seq & (capacity - 1)):
 * - head: the producer publishes slots [head, head + k) with a release store of head after
 *   writing them; consumers acquire head before reading slots.
 * - gating: the producer never writes sequence s unless every attached cursor has
 *   pos > s - capacity, i.e. it never overwrites a slot an attached consumer has not read.
 *   Consumers publish pos with a release store after copying out.
 * - detaching: publish(..., IPC_BCAST_DETACH_LAGGARDS) detaches attached consumers that are a
 *   full ring behind (head - pos >= capacity) and block the publish, then goes on. The producer
 *   (or the supervisor, for a dead consumer) flips the cursor's state word with a CAS.
 * - torn-read guard: before writing slots the producer announces `reserve` (end of the range it
 *   is about to write). A consumer copies slots, then re-reads reserve; if reserve > pos +
 *   capacity its copy may be overwritten (it was detached meanwhile, e.g. SIGSTOPped mid-copy)
 *   and the read is discarded. So no consumer ever returns a torn slot, attached or not.
 *   reserve never decreases: a restarted producer stores the maximum of its range's end and
 *   the reserve it finds, which a killed incarnation may have left above head (with slots up
 *   to it overwritten).
 * - lagged: a consumer that finds itself detached (or its slots overwritten) returns
 *   {lagged = true, missed = k}: k is exactly the number of messages it skips, from its cursor
 *   to the head at that moment; its cursor moves to that head. ipc_bcast_reattach then attaches
 *   it there. If the producer overwrote that point before the re-attach took effect, the next
 *   read reports lagged again with the further exact count. The sum of everything read plus
 *   everything reported missed is always exactly what was published; nothing is skipped
 *   silently. missed may be 0 (detached while caught up, e.g. by ipc_bcast_detach); lagged
 *   still means "you were detached, call ipc_bcast_reattach".
 * - re-attach handshake (Dekker): the consumer stores its attached state then bumps attach_gen
 *   (full barrier); the producer stores reserve, full barrier, then loads attach_gen and rescans
 *   the cursors if it changed. So either the producer sees the new consumer and gates on it, or
 *   the consumer's next read sees the reserve that overran it.
 * - a producer killed at any instruction publishes nothing half-written (head is stored last);
 *   a restarted producer continues from head.
 *
 * Context: publish is producer-only; read / reattach / empty only by consumer c itself; detach
 * by the producer or the supervisor. ipc_bcast_init while nobody uses the ring.
 */
#ifndef IPC_BCAST_H
#define IPC_BCAST_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ring.h"

/* 63 consumers: 64 nodes (PX_NODES_MAX) minus the producer itself. */
#define IPC_BCAST_CONSUMERS_MAX 63
/* Cursor slots, indexed by endpoint id (0..63); one more than the consumers because the
 * producer's own id is a hole. */
#define IPC_BCAST_CURSORS_MAX 64
/* Same bound as the point-to-point ring (4 MiB of slots). */
#define IPC_BCAST_SLOTS_MAX IPC_RING_SLOTS_MAX

/* publish flag: detach attached consumers that are a full ring behind instead of waiting. */
#define IPC_BCAST_DETACH_LAGGARDS 1u

struct ipc_bcast_cursor {
    alignas(IPC_LINE_BYTES) uint64_t pos; /* consumer: next sequence to read; release-published */
    uint32_t state; /* (generation << 1) | attached; consumer stores, producer CASes */
    uint32_t reserved0;
    uint64_t lagged_events; /* consumer: lagged results returned */
    uint64_t missed_total;  /* consumer: sum of the missed counts returned */
};

struct ipc_bcast {
    /* Published line: producer-written, read by every consumer. */
    alignas(IPC_LINE_BYTES) uint64_t head; /* next sequence to write; release-published */
    uint64_t reserve;                      /* end of the range being written (torn-read guard) */
    uint32_t mask;                         /* capacity - 1, read-only after init */
    uint32_t reserved0;
    uint64_t consumers_mask; /* cursors in use, read-only after init */
    /* Producer-private line. */
    alignas(IPC_LINE_BYTES) uint64_t min_cache; /* lower bound of the attached cursors' pos */
    uint32_t gen_seen;                          /* attach_gen at the last cursor scan */
    uint32_t reserved1;
    uint64_t detached_events; /* consumers detached by publish */
    /* Consumer-written line: bumped on every re-attach. */
    alignas(IPC_LINE_BYTES) uint32_t attach_gen;
    struct ipc_bcast_cursor cursors[IPC_BCAST_CURSORS_MAX];
    /* The slots follow: capacity * IPC_SLOT_BYTES bytes. */
    alignas(IPC_LINE_BYTES) unsigned char slots[];
};

_Static_assert(sizeof(struct ipc_bcast_cursor) == IPC_LINE_BYTES, "one cursor per line");
_Static_assert(offsetof(struct ipc_bcast, min_cache) == IPC_LINE_BYTES, "producer line");
_Static_assert(offsetof(struct ipc_bcast, attach_gen) == 2 * IPC_LINE_BYTES, "attach line");
_Static_assert(offsetof(struct ipc_bcast, cursors) == 3 * IPC_LINE_BYTES, "cursor lines");
_Static_assert(offsetof(struct ipc_bcast, slots) % IPC_LINE_BYTES == 0, "slots aligned");
_Static_assert(IPC_BCAST_CURSORS_MAX <= 64, "consumers_mask is 64 bits");

struct ipc_bcast_read_result {
    uint32_t n;      /* slots copied to out (0 when lagged) */
    bool lagged;     /* the consumer was detached: messages were skipped */
    uint64_t missed; /* when lagged: exactly how many messages were skipped */
};

/* Bytes needed for a broadcast ring of `slots` slots. slots: power of two, 1..MAX. */
size_t ipc_bcast_bytes(uint32_t slots);
/* Initialises an empty ring in `mem` (IPC_LINE_BYTES-aligned, ipc_bcast_bytes(slots) long)
 * whose consumers are the cursor indices set in consumers_mask (at most
 * IPC_BCAST_CONSUMERS_MAX bits), all attached at sequence 0. */
struct ipc_bcast *ipc_bcast_init(void *mem, uint32_t slots, uint64_t consumers_mask);
/* Producer: publishes up to n slots; returns how many. With flags 0 it stops before the
 * slowest attached consumer (backpressure, may return 0). With IPC_BCAST_DETACH_LAGGARDS it
 * first detaches attached consumers that are a full ring behind. Never blocks; n is clipped
 * to the capacity. */
uint32_t ipc_bcast_publish(struct ipc_bcast *b, const void *slots, uint32_t n, unsigned flags);
/* Consumer c: reads up to max slots into out. See the header comment for lagged. */
struct ipc_bcast_read_result ipc_bcast_read(struct ipc_bcast *b, uint32_t c, void *out,
                                            uint32_t max);
/* Consumer c: re-attaches at its cursor, which a lagged read left at the then head. No-op if
 * already attached. */
void ipc_bcast_reattach(struct ipc_bcast *b, uint32_t c);
/* Producer or supervisor: consumer c (e.g. dead) stops gating the producer. Its next read
 * reports lagged. No-op if already detached. */
void ipc_bcast_detach(struct ipc_bcast *b, uint32_t c);
/* Consumer c: true if a read would return nothing (attached and nothing new). A detached
 * consumer is not empty: its next read reports lagged. */
bool ipc_bcast_empty(const struct ipc_bcast *b, uint32_t c);
bool ipc_bcast_attached(const struct ipc_bcast *b, uint32_t c);
uint32_t ipc_bcast_capacity(const struct ipc_bcast *b);
/* Producer: the next sequence number it will publish (= messages published so far). */
uint64_t ipc_bcast_head(const struct ipc_bcast *b);

#endif
