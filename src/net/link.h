/* link.h: the ZeroMQ links of one host to the other hosts of its pool.
 *
 * Sockets: one PULL bound to this host's address:port from the pool file (nothing else is
 * bound), one PUSH per other host connected to that host's address:port. Every connection is
 * CURVE-encrypted; this host is the CURVE server of its PULL, and its ZAP handler (a thread of
 * the link) admits only clients whose public key is one of the pool file's other hosts, and
 * names that host as the connection's user id, so every frame received carries its
 * authenticated sending host. A process without one of those secret keys cannot connect.
 *
 * Bounds, the same contract as the rings: a PUSH holds at most NET_SNDHWM_FRAMES frames
 * (ZMQ_SNDHWM) and queues nothing for a host it is not connected to (ZMQ_IMMEDIATE), so
 * net_link_send returns -EAGAIN instead of queueing: the caller keeps the frame and tells its
 * producers (backpressure). A PULL takes frames of at most NET_FRAME_BYTES_MAX bytes
 * (ZMQ_MAXMSGSIZE: a larger one closes that connection).
 *
 * No ZMTP heartbeats, on purpose: a receiver that stops reading (its rings are full) stops
 * reading the socket too, so it would miss the pings, close the connection after the timeout
 * and lose every frame in flight on it. Without them a connection only breaks when the peer
 * process is gone (then its nodes are down and what was in flight to them may be lost like
 * any message to a down node); a cut link resumes by TCP retransmission when it comes back.
 * A host's silence is detected above the link, by its missing status frames (gateway.h).
 *
 * Context: net_link_send only from one thread, net_link_recv / net_link_wait only from one
 * (possibly another) thread; open and close from the owner while neither runs. */
#ifndef PX_NET_LINK_H
#define PX_NET_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/pool_file.h"

/* Frames a PUSH holds for a slow host before send says -EAGAIN: 64 frames of up to 256
 * messages, several windows of a busy leader. */
#define NET_SNDHWM_FRAMES 64

struct net_link;

/* Opens the links of host `self` with its secret key (Z85). 0, or -1 with one line in err. */
int net_link_open(const struct net_pool *p, uint32_t self, const char *secret_z85,
                  struct net_link **out, char *err, size_t err_len);
/* Sends one frame to host h without blocking: 0, -EAGAIN (not connected or its queue is at
 * the high-water mark: keep the frame), or another negative errno. */
int net_link_send(struct net_link *l, uint32_t h, const void *buf, size_t len);
/* Receives one frame into buf without blocking: its length, 0 when there is none, -1 for a
 * frame without an authenticated sender or longer than cap (dropped). *host: the sender. */
ssize_t net_link_recv(struct net_link *l, void *buf, size_t cap, uint32_t *host);
/* Sleeps until a frame may be there or timeout_ms passes. */
void net_link_wait(struct net_link *l, int timeout_ms);
/* Closes every socket (unsent frames are discarded: linger 0) and the context. NULL: no-op. */
void net_link_close(struct net_link *l);

#endif
