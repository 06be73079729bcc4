/* transport_sock.c: the same transport contract over UNIX-domain socketpairs, one per pair of
 * endpoints, created by the supervisor before fork. It exists to measure what the
 * shared-memory rings gain (bench/throughput): same protocol, same node loop, same batching
 * (an outbox is written with one send() per destination and flush, in packets of up to
 * SOCK_PACKET_MSGS_MAX messages), only the medium differs. PX_TO_ALL is a send to every other
 * node (sockets have no broadcast).
 *
 * A node's socket ends are inherited again by its restarted incarnation (the supervisor keeps
 * every end open), so what is in flight to a dead node waits in the kernel like slots in a
 * ring. That is why the pairs are SOCK_SEQPACKET, not SOCK_STREAM: a packet is sent and
 * received whole or not at all, so a sender killed in the middle of a write or a receiver
 * killed after reading half a message cannot leave bytes that put the link out of step for
 * the next incarnation (a stream did: every later message was read shifted). */
#include "node/transport.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urcu/system.h>

#include "ipc/segment.h"

/* Same bound as the shm transport's outbox. */
#define SOCK_OUTBOX_MAX 4096
/* Messages in one packet (one send): 16 KiB, so a burst costs few system calls and a packet
 * stays far below the send buffer (a packet larger than the buffer fails with EMSGSIZE). */
#define SOCK_PACKET_MSGS_MAX 256
#define SOCK_PACKET_BYTES    (SOCK_PACKET_MSGS_MAX * PX_MSG_BYTES)
/* Send buffer every end gets at least: two packets in flight (the kernel doubles the value). */
#define SOCK_SNDBUF_MIN SOCK_PACKET_BYTES
/* Packets read from one peer per receive call, so a peer sending damaged packets cannot keep
 * the receiver in one call. */
#define SOCK_RECV_PACKETS_MAX 16

struct sock_mesh {
    uint16_t endpoints;
    int fds[]; /* fds[a * endpoints + b]: a's end of the pair (a, b); -1 on the diagonal */
};

struct sock_peer {
    int fd;
    uint32_t head, tail; /* outbox indices, mod SOCK_OUTBOX_MAX */
    struct px_msg *out;
    uint32_t in_head, in_len; /* messages of the last packet read: in[in_head..in_len) left */
    struct px_msg *in;        /* SOCK_PACKET_MSGS_MAX */
};

struct sock_transport {
    struct transport base;
    struct ipc_segment *seg; /* for the alive flags only */
    uint16_t self, nodes, endpoints;
    uint32_t recv_start;
    struct sock_peer *peers;
    struct pollfd *pfds;
};

/* A packet must fit the send buffer; a system configured with a smaller default gets more. */
static int sock_sndbuf_at_least(int fd)
{
    int have = 0;
    socklen_t len = sizeof(have);
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &len) != 0)
        return -errno;
    int want = SOCK_SNDBUF_MIN;
    if (have >= 2 * want) /* Linux reports the doubled value it uses */
        return 0;
    return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) == 0 ? 0 : -errno;
}

int transport_sock_mesh_create(uint16_t endpoints, struct sock_mesh **out)
{
    /* endpoints^2 descriptors: raise the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sock_mesh *m = malloc(sizeof(*m) + sizeof(int) * endpoints * endpoints);
    if (m == NULL)
        return -ENOMEM;
    m->endpoints = endpoints;
    for (uint32_t i = 0; i < (uint32_t)endpoints * endpoints; i++)
        m->fds[i] = -1;
    for (uint16_t a = 0; a < endpoints; a++) {
        for (uint16_t b = a + 1; b < endpoints; b++) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                int e = errno;
                transport_sock_mesh_destroy(m);
                return -e;
            }
            m->fds[a * endpoints + b] = sv[0];
            m->fds[b * endpoints + a] = sv[1];
            int rc = sock_sndbuf_at_least(sv[0]);
            if (rc == 0)
                rc = sock_sndbuf_at_least(sv[1]);
            if (rc != 0) {
                transport_sock_mesh_destroy(m);
                return rc;
            }
        }
    }
    *out = m;
    return 0;
}

void transport_sock_mesh_destroy(struct sock_mesh *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < (uint32_t)m->endpoints * m->endpoints; i++)
        if (m->fds[i] >= 0)
            close(m->fds[i]);
    free(m);
}

int transport_sock_mesh_fd(const struct sock_mesh *m, uint16_t a, uint16_t b)
{
    PX_ASSERT(a < m->endpoints && b < m->endpoints);
    PX_ASSERT(a != b);
    return m->fds[a * m->endpoints + b];
}

static struct sock_transport *to_sock(struct transport *t)
{
    return (struct sock_transport *)t;
}

/* Reads one packet of peer p into its `in` buffer; false when there is none. A packet that is
 * no whole number of messages, or longer than a packet may be, is counted bad (the part that is
 * a whole number of messages is still checked one by one). */
static bool read_packet(struct sock_transport *s, uint16_t p)
{
    struct sock_peer *pe = &s->peers[p];
    PX_ASSERT(pe->in_head == pe->in_len);
    /* MSG_TRUNC: the real length of a packet longer than the buffer (its rest is discarded). */
    ssize_t got = recv(pe->fd, pe->in, SOCK_PACKET_BYTES, MSG_TRUNC | MSG_DONTWAIT);
    if (got <= 0)
        return false; /* EAGAIN, or a peer end that is closed: nothing to read */
    size_t kept = (size_t)got < SOCK_PACKET_BYTES ? (size_t)got : SOCK_PACKET_BYTES;
    uint32_t whole = (uint32_t)(kept / PX_MSG_BYTES);
    size_t cut = (size_t)got - (size_t)whole * PX_MSG_BYTES;
    if (cut > 0)
        transport_bad_cut(&s->base, p, (cut + PX_MSG_BYTES - 1) / PX_MSG_BYTES, (size_t)got);
    pe->in_head = 0;
    pe->in_len = transport_check_in(&s->base, p, pe->in, whole);
    return true;
}

/* Hands out up to max messages of peer p, reading packets as needed. */
static uint32_t recv_peer(struct sock_transport *s, uint16_t p, struct px_msg *out, uint32_t max)
{
    struct sock_peer *pe = &s->peers[p];
    uint32_t n = 0;
    for (uint32_t packets = 0; n < max;) {
        if (pe->in_head == pe->in_len) {
            if (packets == SOCK_RECV_PACKETS_MAX || !read_packet(s, p))
                break;
            packets++;
            continue;
        }
        uint32_t take = pe->in_len - pe->in_head;
        if (take > max - n)
            take = max - n;
        memcpy(&out[n], &pe->in[pe->in_head], (size_t)take * PX_MSG_BYTES);
        pe->in_head += take;
        n += take;
    }
    PX_ASSERT(n <= max);
    return n;
}

static uint32_t sock_recv(struct transport *t, struct px_msg *out, uint32_t max)
{
    struct sock_transport *s = to_sock(t);
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->endpoints && n < max; i++) {
        uint16_t p = (uint16_t)((s->recv_start + i) % s->endpoints);
        if (p != s->self)
            n += recv_peer(s, p, out + n, max - n);
    }
    s->recv_start = (s->recv_start + 1) % s->endpoints;
    t->stats.received += n;
    return n;
}

static bool alive(struct sock_transport *s, uint16_t p)
{
    return CMM_LOAD_SHARED(ipc_segment_ctl(s->seg, p)->alive) != 0;
}

static int queue(struct sock_transport *s, uint16_t p, const struct px_msg *m)
{
    struct sock_peer *pe = &s->peers[p];
    if (pe->tail - pe->head == SOCK_OUTBOX_MAX)
        return -ENOBUFS;
    pe->out[pe->tail % SOCK_OUTBOX_MAX] = *m;
    pe->tail++;
    return 0;
}

static int sock_send(struct transport *t, const struct px_msg *m_in)
{
    struct sock_transport *s = to_sock(t);
    PX_ASSERT(m_in->from == s->self);
    struct px_msg sealed = *m_in;
    const struct px_msg *m = &sealed;
    transport_seal(&sealed); /* final from here on: one check for every copy queued */
    if (m->to != PX_TO_ALL) {
        PX_ASSERT(m->to < s->endpoints && m->to != s->self);
        if (!alive(s, m->to)) {
            t->stats.drops++;
            return 0;
        }
        return queue(s, m->to, m);
    }
    /* No broadcast medium: check room everywhere first so a full outbox refuses the whole
     * message, never a part of the recipients. */
    for (uint16_t p = 0; p < s->nodes; p++)
        if (p != s->self && s->peers[p].tail - s->peers[p].head == SOCK_OUTBOX_MAX)
            return -ENOBUFS;
    for (uint16_t p = 0; p < s->nodes; p++) {
        if (p == s->self)
            continue;
        if (!alive(s, p))
            t->stats.drops++;
        else
            (void)queue(s, p, m);
    }
    return 0;
}

/* Writes the outbox of peer p in packets of up to SOCK_PACKET_MSGS_MAX messages. */
static void flush_peer(struct sock_transport *s, uint16_t p)
{
    struct sock_peer *pe = &s->peers[p];
    while (pe->tail != pe->head) {
        uint32_t start = pe->head % SOCK_OUTBOX_MAX;
        uint32_t len = pe->tail - pe->head;
        if (len > SOCK_OUTBOX_MAX - start)
            len = SOCK_OUTBOX_MAX - start;
        if (len > SOCK_PACKET_MSGS_MAX)
            len = SOCK_PACKET_MSGS_MAX;
        size_t bytes = (size_t)len * PX_MSG_BYTES;
        ssize_t w = send(pe->fd, &pe->out[start], bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            /* EAGAIN: the buffer is full, retried on the next flush. EMSGSIZE cannot happen:
             * mesh_create gave every end room for a packet. A peer end closed (EPIPE) only
             * when the supervisor is gone, and then the node dies with it. */
            PX_ASSERT(errno != EMSGSIZE);
            s->base.stats.ring_full++;
            return;
        }
        PX_ASSERT((size_t)w == bytes); /* a packet is sent whole or not at all */
        pe->head += len;
        s->base.stats.sent += len;
    }
}

static uint32_t sock_flush(struct transport *t)
{
    struct sock_transport *s = to_sock(t);
    uint32_t queued = 0;
    for (uint16_t p = 0; p < s->endpoints; p++) {
        struct sock_peer *pe = &s->peers[p];
        if (p == s->self || pe->tail == pe->head)
            continue;
        if (!alive(s, p)) {
            t->stats.drops += pe->tail - pe->head;
            pe->head = pe->tail;
            continue;
        }
        flush_peer(s, p);
        queued += pe->tail - pe->head;
    }
    return queued;
}

static void sock_wait(struct transport *t, uint64_t timeout_ns)
{
    struct sock_transport *s = to_sock(t);
    nfds_t n = 0;
    for (uint16_t p = 0; p < s->endpoints; p++) {
        if (p == s->self)
            continue;
        s->pfds[n].fd = s->peers[p].fd;
        s->pfds[n].events = POLLIN;
        n++;
    }
    int ms = (int)((timeout_ns + 999999) / 1000000);
    (void)poll(s->pfds, n, ms);
}

static void sock_peer_down(struct transport *t, uint16_t peer)
{
    struct sock_transport *s = to_sock(t);
    struct sock_peer *pe = &s->peers[peer];
    if (peer == s->self)
        return;
    t->stats.drops += pe->tail - pe->head;
    pe->tail = pe->head;
}

static void sock_destroy(struct transport *t)
{
    struct sock_transport *s = to_sock(t);
    if (s == NULL)
        return;
    if (s->peers)
        for (uint16_t p = 0; p < s->endpoints; p++) {
            free(s->peers[p].out);
            free(s->peers[p].in);
        }
    free(s->peers);
    free(s->pfds);
    free(s);
}

static const struct transport_ops sock_ops = {
    .recv = sock_recv,
    .send = sock_send,
    .flush = sock_flush,
    .wait = sock_wait,
    .peer_down = sock_peer_down,
    .destroy = sock_destroy,
};

int transport_sock_create(struct sock_mesh *m, struct ipc_segment *seg, uint16_t self,
                          uint16_t nodes, struct transport **out)
{
    struct sock_transport *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->base.ops = &sock_ops;
    s->base.self = self;
    s->base.nodes = nodes;
    s->seg = seg;
    s->self = self;
    s->nodes = nodes;
    s->endpoints = m->endpoints;
    s->peers = calloc(m->endpoints, sizeof(*s->peers));
    s->pfds = calloc(m->endpoints, sizeof(*s->pfds));
    if (s->peers == NULL || s->pfds == NULL)
        goto err;
    for (uint16_t p = 0; p < m->endpoints; p++) {
        s->peers[p].fd = m->fds[self * m->endpoints + p];
        if (p == self)
            continue;
        s->peers[p].out = malloc(SOCK_OUTBOX_MAX * sizeof(struct px_msg));
        s->peers[p].in = malloc(SOCK_PACKET_MSGS_MAX * sizeof(struct px_msg));
        if (s->peers[p].out == NULL || s->peers[p].in == NULL)
            goto err;
    }
    *out = &s->base;
    return 0;
err:
    sock_destroy(&s->base);
    return -ENOMEM;
}
