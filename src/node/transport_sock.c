/* transport_sock.c: the same transport contract over UNIX-domain stream socketpairs, one per
 * pair of endpoints, created by the supervisor before fork. It exists to measure what the
 * shared-memory rings gain (bench/throughput): same protocol, same node loop, same batching
 * (an outbox is written with one send() per destination and flush), only the medium differs.
 * PX_TO_ALL is a send to every other node (sockets have no broadcast).
 *
 * A node's socket ends are inherited again by its restarted incarnation (the supervisor keeps
 * every end open), so bytes in flight to a dead node wait in the kernel like slots in a ring. */
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
/* Bytes read from one socket per call: whole messages only are consumed. */
#define SOCK_RECV_BYTES (256 * PX_MSG_BYTES)

struct sock_mesh {
    uint16_t endpoints;
    int fds[]; /* fds[a * endpoints + b]: a's end of the pair (a, b); -1 on the diagonal */
};

struct sock_peer {
    int fd;
    uint32_t head, tail; /* outbox indices, mod SOCK_OUTBOX_MAX */
    struct px_msg *out;
    uint32_t in_len; /* bytes of a partial message kept in `in` */
    unsigned char in[PX_MSG_BYTES];
    uint32_t out_off; /* bytes of out[head] already written */
};

struct sock_transport {
    struct transport base;
    struct ipc_segment *seg; /* for the alive flags only */
    uint16_t self, nodes, endpoints;
    uint32_t recv_start;
    struct sock_peer *peers;
    struct pollfd *pfds;
    unsigned char buf[SOCK_RECV_BYTES];
};

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
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                int e = errno;
                transport_sock_mesh_destroy(m);
                return -e;
            }
            m->fds[a * endpoints + b] = sv[0];
            m->fds[b * endpoints + a] = sv[1];
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

static struct sock_transport *to_sock(struct transport *t)
{
    return (struct sock_transport *)t;
}

/* Reads whole messages from peer p's socket into out (at most max). */
static uint32_t recv_peer(struct sock_transport *s, uint16_t p, struct px_msg *out, uint32_t max)
{
    struct sock_peer *pe = &s->peers[p];
    uint32_t n = 0;
    size_t want = (size_t)max * PX_MSG_BYTES - pe->in_len;
    if (want > sizeof(s->buf))
        want = sizeof(s->buf);
    ssize_t got = recv(pe->fd, s->buf, want, 0);
    if (got <= 0)
        return 0; /* EAGAIN, or a peer end that is closed: nothing to read */
    size_t off = 0;
    if (pe->in_len > 0) {
        size_t need = PX_MSG_BYTES - pe->in_len;
        size_t take = (size_t)got < need ? (size_t)got : need;
        memcpy(pe->in + pe->in_len, s->buf, take);
        pe->in_len += (uint32_t)take;
        off = take;
        if (pe->in_len < PX_MSG_BYTES)
            return 0;
        memcpy(&out[n++], pe->in, PX_MSG_BYTES);
        pe->in_len = 0;
    }
    while ((size_t)got - off >= PX_MSG_BYTES && n < max) {
        memcpy(&out[n++], s->buf + off, PX_MSG_BYTES);
        off += PX_MSG_BYTES;
    }
    size_t rest = (size_t)got - off;
    PX_ASSERT(rest < PX_MSG_BYTES);
    memcpy(pe->in, s->buf + off, rest);
    pe->in_len = (uint32_t)rest;
    return transport_check_in(&s->base, p, out, n);
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

/* Writes the outbox of peer p with as few send() calls as the wrap allows. */
static void flush_peer(struct sock_transport *s, uint16_t p)
{
    struct sock_peer *pe = &s->peers[p];
    while (pe->tail != pe->head) {
        uint32_t start = pe->head % SOCK_OUTBOX_MAX;
        uint32_t len = pe->tail - pe->head;
        if (len > SOCK_OUTBOX_MAX - start)
            len = SOCK_OUTBOX_MAX - start;
        const unsigned char *from = (const unsigned char *)&pe->out[start] + pe->out_off;
        size_t bytes = (size_t)len * PX_MSG_BYTES - pe->out_off;
        ssize_t w = send(pe->fd, from, bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w <= 0) {
            s->base.stats.ring_full++;
            return; /* socket buffer full: retried on the next flush */
        }
        size_t done = (size_t)w + pe->out_off;
        pe->head += (uint32_t)(done / PX_MSG_BYTES);
        pe->out_off = (uint32_t)(done % PX_MSG_BYTES);
        s->base.stats.sent += done / PX_MSG_BYTES;
        if ((size_t)w < bytes) {
            s->base.stats.ring_full++;
            return;
        }
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
        if (!alive(s, p) && pe->out_off == 0) {
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
    /* A message half written stays: its rest must follow or the stream would be torn. */
    uint32_t keep = pe->out_off ? 1u : 0u;
    t->stats.drops += pe->tail - pe->head - keep;
    pe->tail = pe->head + keep;
}

static void sock_destroy(struct transport *t)
{
    struct sock_transport *s = to_sock(t);
    if (s == NULL)
        return;
    if (s->peers)
        for (uint16_t p = 0; p < s->endpoints; p++)
            free(s->peers[p].out);
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
        if (s->peers[p].out == NULL)
            goto err;
    }
    *out = &s->base;
    return 0;
err:
    sock_destroy(&s->base);
    return -ENOMEM;
}
