/* transport.h: how a node process moves px_msg to and from its peers. The node loop sees only
 * this interface, so the same loop runs over the shared-memory rings (transport_shm.c) and over
 * UNIX-domain socketpairs (the benchmark's baseline).
 *
 * Context: one transport per process, used by that process only.
 * Delivery contract: per sender-receiver pair, messages arrive in order, none is duplicated;
 * a message is lost only when its destination is down (counted in drops). A send never blocks:
 * a full ring leaves the message in a bounded per-destination outbox (OUTBOX_MAX) and
 * transport_flush retries it; only when that outbox is full too does send return -ENOBUFS and
 * the caller must flush (and keep draining its own input) before sending more. */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "paxos/px.h"

struct transport_stats {
    uint64_t sent, received;
    uint64_t ring_full; /* pushes that found the ring full (message stayed in the outbox) */
    uint64_t drops;     /* messages for a down peer dropped */
    uint64_t lagged;    /* broadcast reads that reported "lagged" */
    uint64_t missed;    /* messages those lagged reads reported missed */
    /* Messages that arrived damaged or on another sender's link: dropped, counted. */
    uint64_t bad_messages;
};

struct transport;
struct transport_ops {
    /* Reads up to max inbound messages from every source, fairly. */
    uint32_t (*recv)(struct transport *t, struct px_msg *out, uint32_t max);
    /* Queues one message (to a node, PX_TO_ALL, or the client endpoint). 0 or -ENOBUFS. */
    int (*send)(struct transport *t, const struct px_msg *m);
    /* Pushes queued messages into the rings and wakes their readers. Returns how many
     * messages are still queued (a ring was full). */
    uint32_t (*flush)(struct transport *t);
    /* Sleeps until a message may be there or timeout_ns passes. */
    void (*wait)(struct transport *t, uint64_t timeout_ns);
    /* A peer went down: drop what is queued for it, stop waiting for it. */
    void (*peer_down)(struct transport *t, uint16_t peer);
    void (*destroy)(struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    struct transport_stats stats;
    uint16_t self, nodes;  /* this endpoint and the pool size, for the report line */
    uint64_t bad_named[2]; /* senders already named on stderr, bit = endpoint id */
};

/* Integrity of every message (transport_check.c), the same for both transports. A transport
 * seals a message when it takes it in send (the message is final then), so the check covers
 * the outbox, the ring or socket, and the copy out; the receiving transport checks every
 * message before the core sees it (ipc/check.h: every change of up to 3 bits is caught, any
 * other damage passes with probability 2^-16). A message that fails, or that names another
 * sender than the link it came on, is dropped: the protocol tolerates loss, not forgery. */
void transport_seal(struct px_msg *m);
/* Keeps, in order, the messages of msgs[0..n) that arrived from endpoint `sender` whole; counts
 * the others in stats.bad_messages and names the sender in one stderr line the first time.
 * Returns how many were kept (at the front of msgs). */
uint32_t transport_check_in(struct transport *t, uint16_t sender, struct px_msg *msgs, uint32_t n);
/* Counts n messages from `sender` as bad that arrived cut (a packet of `bytes`, no whole number
 * of messages), naming the sender in one stderr line the first time. */
void transport_bad_cut(struct transport *t, uint16_t sender, uint64_t n, size_t bytes);

static inline uint32_t transport_recv(struct transport *t, struct px_msg *out, uint32_t max)
{
    return t->ops->recv(t, out, max);
}
static inline int transport_send(struct transport *t, const struct px_msg *m)
{
    return t->ops->send(t, m);
}
static inline uint32_t transport_flush(struct transport *t)
{
    return t->ops->flush(t);
}
static inline void transport_wait(struct transport *t, uint64_t timeout_ns)
{
    t->ops->wait(t, timeout_ns);
}

struct ipc_segment;
/* Shared-memory transport of endpoint `self` (a node < nodes, or the supervisor = nodes). */
int transport_shm_create(struct ipc_segment *seg, uint16_t self, uint16_t nodes,
                         struct transport **out);

/* UNIX-domain socketpair transport (the benchmark baseline): the supervisor creates the mesh
 * of every pair of endpoints before fork; each process then uses its own ends. */
struct sock_mesh;
int transport_sock_mesh_create(uint16_t endpoints, struct sock_mesh **out);
void transport_sock_mesh_destroy(struct sock_mesh *m);
/* Endpoint a's end of the pair (a, b), a != b (for tests that write into a link directly). */
int transport_sock_mesh_fd(const struct sock_mesh *m, uint16_t a, uint16_t b);
int transport_sock_create(struct sock_mesh *m, struct ipc_segment *seg, uint16_t self,
                          uint16_t nodes, struct transport **out);

#endif
