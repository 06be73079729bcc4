/* wire.h: what travels between the hosts of a pool, and how every frame from the network is
 * checked before anything reaches a ring.
 *
 * One ZeroMQ message = one frame = a struct net_hdr, then
 *   NET_KIND_MSGS:   count (1..NET_FRAME_MSGS_MAX) struct px_msg, each sealed by its sending
 *                    node (transport_seal) and forwarded unchanged;
 *   NET_KIND_STATUS: one struct net_status, then count (0..NET_NODES_MAX) struct
 *                    net_node_status: the sending host's nodes as its segment shows them
 *                    (the host's heartbeat; the first host mirrors them for its client and
 *                    verification).
 * The hosts of a pool run the same build on the same byte order (the frames are the structs).
 *
 * Checks (net_frame_check, net_msg_check): exact size for the count, magic, version, kind,
 * the header's host = the host CURVE authenticated; for a message: a known type, a sender the
 * sending host runs (the client only from the first host), a receiver this host runs (or
 * PX_TO_ALL from a node), and its CRC. A failed check drops the frame or the message and
 * counts it; nothing unchecked reaches a ring. */
#ifndef PX_NET_WIRE_H
#define PX_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/pool_file.h"
#include "paxos/px.h"

#define NET_MAGIC   0x544e5850u /* "PXNT" */
#define NET_VERSION 3u
/* Messages per frame: 16 KiB, a burst costs few sends and the receiver's buffer stays small. */
#define NET_FRAME_MSGS_MAX 256

enum net_kind { NET_KIND_MSGS = 1, NET_KIND_STATUS = 2 };

struct net_hdr {
    uint32_t magic;
    uint8_t version, kind;
    uint16_t host; /* sending host's index in the pool file */
    uint32_t count;
    uint32_t reserved;
};

/* net_status.flags */
enum {
    NET_ST_STOP = 1u,    /* first host: stop the nodes and publish their final states */
    NET_ST_DONE = 2u,    /* first host: final states collected, other hosts may exit */
    NET_ST_STOPPED = 4u, /* other host: its nodes stopped, their final states follow */
};

struct net_status {
    uint32_t flags;
    uint32_t reserved;
    uint64_t seq; /* frames of this kind sent by this gateway incarnation */
};

/* One node as its host's segment shows it (common/pool.h, ipc_ctl). */
struct net_node_status {
    uint16_t id, alive;
    uint32_t incarnation, loaded_incarnation, elections_won;
    uint16_t leader, is_leader;
    uint32_t final_ok;
    uint64_t applied, msgs_sent, msgs_received, ring_full, drops, lagged, bad_messages;
    uint64_t final_seq;
    struct px_history final_fib; /* zero until the node published its final state */
    /* With it, its state machine's (common/pool.h final_sm_*): the main job's verdict reads
     * the value from final_sm_digest. */
    uint64_t final_sm_applied, final_sm_index, final_sm_digest, final_cmd_digest;
    /* Long commands (--command-bytes): the node's checks of what it applied, its torn streams
     * and its missing commands, each over all its incarnations, so that the first host's
     * verdict and report cover every host's learners. */
    uint64_t cmds_checked, cmds_bad, cmd_streams_torn, cmd_missing;
};

#define NET_FRAME_BYTES_MAX                                                                        \
    (sizeof(struct net_hdr) + sizeof(struct net_status) +                                          \
     NET_NODES_MAX * sizeof(struct net_node_status))
_Static_assert(NET_FRAME_BYTES_MAX >=
                   sizeof(struct net_hdr) + NET_FRAME_MSGS_MAX * sizeof(struct px_msg),
               "a full message frame fits the largest frame");

/* Checks a frame from authenticated host `sender` as host `self` receives it. 0 and *hdr on
 * success; -1 and a reason in *why when the frame must be dropped. */
int net_frame_check(const struct net_pool *p, uint32_t self, uint32_t sender, const void *buf,
                    size_t len, struct net_hdr *hdr, const char **why);
/* Checks one message of a checked NET_KIND_MSGS frame. True: it may go into a ring. */
bool net_msg_check(const struct net_pool *p, uint32_t self, uint32_t sender, const struct px_msg *m,
                   const char **why);
/* Checks the node records of a checked NET_KIND_STATUS frame: every id runs on `sender`. */
bool net_status_check(const struct net_pool *p, uint32_t sender,
                      const struct net_node_status *nodes, uint32_t count, const char **why);

#endif
