/* link.c: ZeroMQ links with CURVE and a ZAP handler (link.h). */
#include "net/link.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "net/wire.h"
#include "paxos/px.h"

/* The ZAP endpoint libzmq asks (RFC 27). */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN   "paxos-shm"
/* Reconnect attempts: quick, so a host back from a partition is heard again within ~1 s. */
#define NET_RECONNECT_MS     100
#define NET_RECONNECT_MAX_MS 1000

struct net_link {
    const struct net_pool *pool;
    uint32_t self;
    void *ctx;
    void *zap;  /* REP, served by zap_thread */
    void *pull; /* bound, CURVE server */
    void *push[NET_HOSTS_MAX];
    uint8_t keys[NET_HOSTS_MAX][32]; /* public keys of the hosts, binary */
    pthread_t zap_thread;
    int zap_started;
};

static int set_int(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

/* One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism, key.
 * Admits a CURVE client whose key is another host's; its user id is that host's index. */
static int zap_serve_one(struct net_link *l)
{
    zmq_msg_t part[7];
    int n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, l->zap, 0) < 0) {
            zmq_msg_close(&m);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&part[i]);
            return -1; /* ETERM: the context is closing */
        }
        more = zmq_msg_more(&m);
        if (n < 7)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    const char *status = "400", *text = "unknown key";
    char user[16] = "";
    if (n == 7 && zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&part[6]) == 32) {
        for (uint32_t h = 0; h < l->pool->hosts; h++) {
            if (h != l->self && memcmp(zmq_msg_data(&part[6]), l->keys[h], 32) == 0) {
                status = "200";
                text = "OK";
                snprintf(user, sizeof(user), "%u", h);
            }
        }
    }
    const void *reply[6] = {"1.0", n > 1 ? zmq_msg_data(&part[1]) : "", status, text, user, ""};
    size_t size[6] = {3, n > 1 ? zmq_msg_size(&part[1]) : 0, 3, strlen(text), strlen(user), 0};
    for (int i = 0; i < 6; i++)
        (void)zmq_send(l->zap, reply[i], size[i], i < 5 ? ZMQ_SNDMORE : 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
    return 0;
}

static void *zap_thread(void *arg)
{
    struct net_link *l = arg;
    while (zap_serve_one(l) == 0) {
    }
    return NULL;
}

static void endpoint_of(const struct net_host *h, char *buf, size_t len)
{
    if (strchr(h->address, ':'))
        snprintf(buf, len, "tcp://[%s]:%u", h->address, (unsigned)h->port);
    else
        snprintf(buf, len, "tcp://%s:%u", h->address, (unsigned)h->port);
}

static int open_pull(struct net_link *l, const char *secret, char *err, size_t err_len)
{
    const struct net_host *me = &l->pool->host[l->self];
    char ep[128];
    endpoint_of(me, ep, sizeof(ep));
    int64_t maxsize = (int64_t)NET_FRAME_BYTES_MAX;
    l->pull = zmq_socket(l->ctx, ZMQ_PULL);
    if (l->pull == NULL || set_int(l->pull, ZMQ_LINGER, 0) ||
        set_int(l->pull, ZMQ_RCVHWM, NET_SNDHWM_FRAMES) ||
        zmq_setsockopt(l->pull, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize)) ||
        set_int(l->pull, ZMQ_IPV6, strchr(me->address, ':') != NULL) ||
        set_int(l->pull, ZMQ_CURVE_SERVER, 1) ||
        zmq_setsockopt(l->pull, ZMQ_CURVE_SECRETKEY, secret, NET_KEY_TEXT_BYTES) ||
        zmq_setsockopt(l->pull, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) ||
        zmq_bind(l->pull, ep)) {
        snprintf(err, err_len, "host %s: cannot listen on %s: %s", me->name, ep,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int open_push(struct net_link *l, uint32_t h, const char *secret, char *err, size_t err_len)
{
    const struct net_host *to = &l->pool->host[h];
    char ep[128], pub[NET_KEY_TEXT_BYTES + 1];
    endpoint_of(to, ep, sizeof(ep));
    zmq_curve_public(pub, secret);
    void *s = zmq_socket(l->ctx, ZMQ_PUSH);
    l->push[h] = s;
    if (s == NULL || set_int(s, ZMQ_LINGER, 0) || set_int(s, ZMQ_SNDHWM, NET_SNDHWM_FRAMES) ||
        set_int(s, ZMQ_IMMEDIATE, 1) || set_int(s, ZMQ_IPV6, strchr(to->address, ':') != NULL) ||
        set_int(s, ZMQ_RECONNECT_IVL, NET_RECONNECT_MS) ||
        set_int(s, ZMQ_RECONNECT_IVL_MAX, NET_RECONNECT_MAX_MS) ||
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, to->public_key, NET_KEY_TEXT_BYTES) ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, NET_KEY_TEXT_BYTES) ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, NET_KEY_TEXT_BYTES) || zmq_connect(s, ep)) {
        snprintf(err, err_len, "host %s: cannot connect to host %s at %s: %s",
                 l->pool->host[l->self].name, to->name, ep, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

int net_link_open(const struct net_pool *p, uint32_t self, const char *secret_z85,
                  struct net_link **out, char *err, size_t err_len)
{
    PX_ASSERT(self < p->hosts);
    *out = NULL;
    if (!zmq_has("curve")) {
        snprintf(err, err_len, "this libzmq has no CURVE security");
        return -1;
    }
    struct net_link *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    l->pool = p;
    l->self = self;
    for (uint32_t h = 0; h < p->hosts; h++)
        zmq_z85_decode(l->keys[h], p->host[h].public_key);
    l->ctx = zmq_ctx_new();
    l->zap = l->ctx ? zmq_socket(l->ctx, ZMQ_REP) : NULL;
    if (l->zap == NULL || set_int(l->zap, ZMQ_LINGER, 0) || zmq_bind(l->zap, ZAP_ENDPOINT) ||
        pthread_create(&l->zap_thread, NULL, zap_thread, l) != 0) {
        snprintf(err, err_len, "ZeroMQ set-up: %s", zmq_strerror(zmq_errno()));
        net_link_close(l);
        return -1;
    }
    l->zap_started = 1;
    if (open_pull(l, secret_z85, err, err_len) != 0) {
        net_link_close(l);
        return -1;
    }
    for (uint32_t h = 0; h < p->hosts; h++) {
        if (h != self && open_push(l, h, secret_z85, err, err_len) != 0) {
            net_link_close(l);
            return -1;
        }
    }
    *out = l;
    return 0;
}

int net_link_send(struct net_link *l, uint32_t h, const void *buf, size_t len)
{
    PX_ASSERT(h < l->pool->hosts);
    PX_ASSERT(h != l->self);
    if (zmq_send(l->push[h], buf, len, ZMQ_DONTWAIT) >= 0)
        return 0;
    int e = zmq_errno();
    return e == EAGAIN || e == EINTR ? -EAGAIN : -e;
}

ssize_t net_link_recv(struct net_link *l, void *buf, size_t cap, uint32_t *host)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, l->pull, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    /* The user id our ZAP handler gave the connection: the authenticated sending host. */
    const char *user = zmq_msg_gets(&m, "User-Id");
    char *end = NULL;
    unsigned long h = user ? strtoul(user, &end, 10) : 0;
    size_t len = zmq_msg_size(&m);
    ssize_t rc = -1;
    if (user && end != user && *end == '\0' && h < l->pool->hosts && h != l->self && len <= cap &&
        len > 0) {
        memcpy(buf, zmq_msg_data(&m), len);
        *host = (uint32_t)h;
        rc = (ssize_t)len;
    }
    zmq_msg_close(&m);
    return rc;
}

void net_link_wait(struct net_link *l, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = l->pull, .events = ZMQ_POLLIN};
    (void)zmq_poll(&it, 1, timeout_ms);
}

void net_link_close(struct net_link *l)
{
    if (l == NULL)
        return;
    for (uint32_t h = 0; h < NET_HOSTS_MAX; h++)
        if (l->push[h])
            zmq_close(l->push[h]);
    if (l->pull)
        zmq_close(l->pull);
    if (l->ctx)
        zmq_ctx_shutdown(l->ctx); /* the ZAP thread's recv returns ETERM */
    if (l->zap_started)
        pthread_join(l->zap_thread, NULL);
    if (l->zap)
        zmq_close(l->zap);
    if (l->ctx)
        zmq_ctx_term(l->ctx);
    free(l);
}
