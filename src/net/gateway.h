/* gateway.h: the process that joins one host's shared-memory pool to the other hosts.
 *
 * Every host's segment is laid out for the whole pool: endpoint i is node i wherever it runs,
 * endpoint `nodes` the client (on the first host). The nodes of this host are real processes
 * on the rings, exactly as in a one-host pool, and never know the difference. The gateway
 * stands in for every endpoint that lives on another host:
 *   - it consumes the point-to-point rings local -> remote and, for each other host, the
 *     broadcast ring of every local node through one cursor (the lowest node id of that host),
 *     and sends them over the link (link.h) in frames of up to NET_FRAME_MSGS_MAX messages;
 *   - it produces what arrives from another host into the rings remote -> local, and a
 *     remote node's broadcast into that node's broadcast ring in this segment;
 *   - it sends this host's node status every NET_STATUS_NS (the host heartbeat) and mirrors
 *     the other hosts' status into their nodes' control blocks and user areas, so the alive
 *     flags, the membership view and the first host's client and verification read remote
 *     nodes exactly like local ones.
 *
 * Backpressure, the rings' contract end to end: a link at its high-water mark keeps the frames
 * in a bounded outbox (GW_OUTBOX_MAX per host); with that outbox full the gateway stops
 * popping the rings towards that host, so they fill, and the sending node sees a full ring
 * (ring_full, its congestion window halves) and then -ENOBUFS from its own outbox. Inbound,
 * a full local ring keeps the messages in a bounded queue per ring; with a queue full the
 * gateway stops reading the link, so the sender's high-water mark is reached in turn.
 * What may be lost, and is counted: messages for a host not heard for NET_HOST_DEAD_NS (its
 * nodes are marked down, as for a crashed local node: drops), broadcasts a blocked cursor
 * missed when its producer detached it (lagged/missed, exactly as a local lagged consumer;
 * the receivers catch up), and the status frames themselves (the next one supersedes them).
 *
 * Context: a forked child of the supervisor (one per host), two threads (outbound + status,
 * inbound) plus the link's ZAP thread. */
#ifndef PX_NET_GATEWAY_H
#define PX_NET_GATEWAY_H

#include <stdint.h>

#include "net/pool_file.h"

/* Status (host heartbeat) period, and how long a host may stay silent before its nodes are
 * marked down. */
#define NET_STATUS_NS    (20ull * 1000 * 1000)
#define NET_HOST_DEAD_NS (1000ull * 1000 * 1000)

/* Shared by the supervisor and its gateway (MAP_SHARED, mapped before fork). Single words;
 * each field has one writer, named. */
struct net_shared {
    int32_t state;                      /* gateway: 0 starting, 1 running, -1 failed (printed) */
    uint32_t done;                      /* supervisor (first host): final states collected */
    uint32_t stopped;                   /* supervisor (other host): nodes stopped, finals out */
    uint32_t quit;                      /* supervisor: the gateway exits */
    uint32_t host_up[NET_HOSTS_MAX];    /* gateway: host h heard within NET_HOST_DEAD_NS */
    uint32_t host_flags[NET_HOSTS_MAX]; /* gateway: the last status flags of host h */
    uint64_t frames_sent, frames_received, msgs_sent, msgs_received;
    uint64_t hwm_full;       /* sends refused at the high-water mark (frame kept) */
    uint64_t drops;          /* messages for a host that was down, dropped */
    uint64_t bad_frames;     /* frames that failed their check, dropped */
    uint64_t bad_messages;   /* messages that failed their check, dropped */
    uint64_t lagged, missed; /* broadcast cursors detached while a host was slow */
    uint64_t status_dropped; /* status frames not sent (high-water mark) */
    uint64_t host_down;      /* times a host was marked down */
    /* supervisor (other host): what earlier incarnations of each local node counted (its
     * process table banks them when a node dies); the status adds them to the live ones so
     * the first host reports every incarnation, as for its own nodes. */
    struct net_banked {
        uint64_t msgs, ring_full, drops, lagged, bad_messages, cmd_torn, cmd_missing;
    } banked[NET_NODES_MAX];
};

struct ipc_segment;

struct gateway_args {
    const struct net_pool *pool;
    uint32_t self;      /* this host's index */
    const char *secret; /* this host's CURVE secret key, Z85 */
    struct ipc_segment *seg;
    struct net_shared *sh;
};

/* The gateway process body. Returns its exit code: 0 after quit, 3 after a failure it printed
 * in one line (it cannot listen on the pool file's address, say). */
int gateway_run(const struct gateway_args *a);

#endif
