/* test_net.c: the pool file parser, the checks of frames from the network, and the ZeroMQ
 * links over loopback TCP in one process (authentication, backpressure, order). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "net/link.h"
#include "net/pool_file.h"
#include "net/wire.h"
#include "node/transport.h"

void px_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

static char dir[] = "/tmp/test-net-XXXXXX";
static char keys[3][2][41]; /* [host][0 public, 1 secret] */

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A pool file of three hosts with real keys; `extra` is appended verbatim. */
static void write_pool(const char *name, const char *pool_section, const char *extra)
{
    char text[4096];
    int n = snprintf(text, sizeof(text), "# a test pool\n[pool]\n%s\n", pool_section);
    for (int h = 0; h < 3; h++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "\n[host h%d]\naddress = 127.0.0.1\nport = %d\nnodes = %d-%d\n"
                      "public_key = %s\nsecret_key_file = h%d.key\n",
                      h, 7400 + h, 3 * h, 3 * h + 2, keys[h][0], h);
    snprintf(text + n, sizeof(text) - (size_t)n, "%s", extra);
    write_file(name, text);
}

static int load(const char *name, struct net_pool *p, char *err, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return net_pool_load(path, p, err, len);
}

static int setup_all(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    for (int h = 0; h < 3; h++) {
        if (zmq_curve_keypair(keys[h][0], keys[h][1]) != 0)
            return -1;
        char name[16], line[48];
        snprintf(name, sizeof(name), "h%d.key", h);
        snprintf(line, sizeof(line), "%s\n", keys[h][1]);
        write_file(name, line);
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (chmod(path, 0600) != 0) /* a secret others may read is refused */
            return -1;
    }
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- the pool file ------------------------------------------------------------------------ */

static void test_pool_file_good_lists_hosts_nodes_and_default_roles(void **state)
{
    (void)state;
    write_pool("good.ini", "nodes = 9", "");
    struct net_pool p;
    char err[512] = "";
    assert_int_equal(load("good.ini", &p, err, sizeof(err)), 0);
    assert_int_equal(p.nodes, 9);
    assert_int_equal(p.hosts, 3);
    assert_int_equal(p.proposers, 3);
    assert_int_equal(p.acceptors, 9);
    assert_int_equal(p.learners, 9);
    assert_string_equal(p.host[1].name, "h1");
    assert_int_equal(p.host[1].port, 7401);
    assert_true(p.host[1].nodes_mask == 0x38);
    assert_int_equal(p.host_of[5], 1);
    assert_int_equal(net_pool_host_index(&p, "h2"), 2);
    assert_int_equal(net_pool_host_index(&p, "nope"), -1);
    char path[300];
    snprintf(path, sizeof(path), "%s/h2.key", dir);
    assert_string_equal(p.host[2].secret_key_file, path); /* relative to the pool file */
    char secret[41];
    assert_int_equal(net_pool_read_secret(&p, 2, secret, err, sizeof(err)), 0);
    assert_string_equal(secret, keys[2][1]);
}

static void test_pool_file_secret_of_another_host_is_refused(void **state)
{
    (void)state;
    write_pool("swap.ini", "nodes = 9", "");
    struct net_pool p;
    char err[512] = "";
    assert_int_equal(load("swap.ini", &p, err, sizeof(err)), 0);
    snprintf(p.host[0].secret_key_file, sizeof(p.host[0].secret_key_file), "%s/h1.key", dir);
    assert_int_equal(net_pool_read_secret(&p, 0, (char[41]){0}, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not belong to the public_key of [host h0]"));
}

static void test_pool_file_secret_others_may_read_or_write_is_refused(void **state)
{
    (void)state;
    write_pool("open.ini", "nodes = 9", "");
    struct net_pool p;
    char err[512] = "";
    assert_int_equal(load("open.ini", &p, err, sizeof(err)), 0);
    char path[256], expect[600];
    snprintf(path, sizeof(path), "%s/h1.key", dir);
    static const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0660, 0666};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        err[0] = '\0';
        assert_int_equal(net_pool_read_secret(&p, 1, (char[41]){0}, err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect), "%s: permissions %04o are too open; chmod 600 %s", path,
                 (unsigned)modes[i], path);
        assert_string_equal(err, expect);
    }
    assert_int_equal(chmod(path, 0400), 0); /* read-only for its owner: fine */
    assert_int_equal(net_pool_read_secret(&p, 1, (char[41]){0}, err, sizeof(err)), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

struct bad_case {
    const char *pool, *extra, *expect;
};

static void test_pool_file_bad_files_give_one_line_naming_file_and_line(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"nodes = 9\ncolour = blue", "", "bad.ini:4: unknown key 'colour' in [pool]"},
        {"nodes = 0", "", "bad.ini:3: nodes = '0': expected a number in 1..64"},
        {"nodes = 9\nproposers = 10", "", "bad.ini: proposers, acceptors and learners"},
        {"nodes = 9", "[host h0]\n", "host 'h0' appears twice"},
        {"nodes = 9", "[host h3]\naddress = localhost\n",
         "address 'localhost' is not an IPv4 or IPv6 address literal"},
        {"nodes = 9", "[host h3]\nport = 0\n", "port = '0': expected a number in 1..65535"},
        {"nodes = 9", "[host h3]\npublic_key = short\n", "public_key: expected 40 Z85"},
        {"nodes = 9", "[host h3]\nnodes = 5-2\n", "nodes: range 5-2 is empty"},
        {"nodes = 9", "[host h3]\nnodes = 1,1\n", "nodes: node 1 is listed twice"},
        {"nodes = 9", "[sidecar]\n", "unknown section [sidecar]"},
        {"nodes = 9", "just words\n", "expected 'key = value' or a [section]"},
        {"nodes = 10", "", "bad.ini: node 9 runs on no host"},
        {"nodes = 8", "", "bad.ini: [host h2] lists a node id >= nodes = 8"},
        {"nodes = 9",
         "[host h3]\naddress = 127.0.0.2\nport = 1\nnodes = 3\n"
         "public_key = 0000000000000000000000000000000000000000\n"
         "secret_key_file = x\n",
         "bad.ini: [host h3] lists a node id another host lists"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_pool("bad.ini", cases[i].pool, cases[i].extra);
        struct net_pool p;
        char err[512] = "";
        assert_int_equal(load("bad.ini", &p, err, sizeof(err)), -1);
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].expect);
        assert_null(strchr(err, '\n')); /* one line */
        assert_non_null(strstr(err, "bad.ini"));
    }
    write_file("nopool.ini", "[host x]\n");
    struct net_pool p;
    char err[512] = "";
    assert_int_equal(load("nopool.ini", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing [pool] with nodes = N"));
    assert_int_equal(load("missing.ini", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

/* --- frame and message checks ------------------------------------------------------------- */

static struct net_pool check_pool(void)
{
    write_pool("chk.ini", "nodes = 9", "");
    struct net_pool p;
    char err[512];
    assert_int_equal(load("chk.ini", &p, err, sizeof(err)), 0);
    return p;
}

static struct px_msg sealed(uint8_t type, uint16_t from, uint16_t to)
{
    struct px_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.instance = 42;
    transport_seal(&m);
    return m;
}

static void test_frame_check_rejects_size_magic_kind_and_forged_host(void **state)
{
    (void)state;
    struct net_pool p = check_pool();
    unsigned char buf[sizeof(struct net_hdr) + 2 * sizeof(struct px_msg)];
    struct net_hdr h = {
        .magic = NET_MAGIC, .version = NET_VERSION, .kind = NET_KIND_MSGS, .host = 1, .count = 2};
    memcpy(buf, &h, sizeof(h));
    struct net_hdr out;
    const char *why = NULL;
    assert_int_equal(net_frame_check(&p, 0, 1, buf, sizeof(buf), &out, &why), 0);
    assert_int_equal(out.count, 2);
    assert_int_equal(net_frame_check(&p, 0, 1, buf, sizeof(buf) - 1, &out, &why), -1);
    assert_int_equal(net_frame_check(&p, 0, 1, buf, 3, &out, &why), -1);
    assert_int_equal(net_frame_check(&p, 0, 2, buf, sizeof(buf), &out, &why), -1);
    assert_non_null(strstr(why, "another host"));
    h.count = 0;
    memcpy(buf, &h, sizeof(h));
    assert_int_equal(net_frame_check(&p, 0, 1, buf, sizeof(h), &out, &why), -1);
    h.count = 2;
    h.kind = 9;
    memcpy(buf, &h, sizeof(h));
    assert_int_equal(net_frame_check(&p, 0, 1, buf, sizeof(buf), &out, &why), -1);
    assert_string_equal(why, "unknown kind");
    h.kind = NET_KIND_MSGS;
    h.magic = 0;
    memcpy(buf, &h, sizeof(h));
    assert_int_equal(net_frame_check(&p, 0, 1, buf, sizeof(buf), &out, &why), -1);
}

static void test_msg_check_rejects_type_sender_receiver_and_damage(void **state)
{
    (void)state;
    struct net_pool p = check_pool(); /* h0: 0-2 (+ the client 9), h1: 3-5, h2: 6-8 */
    const char *why = NULL;
    struct px_msg m = sealed(PX_MSG_ACCEPT, 3, 1);
    assert_true(net_msg_check(&p, 0, 1, &m, &why));
    m = sealed(PX_MSG_DECIDE, 4, PX_TO_ALL);
    assert_true(net_msg_check(&p, 0, 1, &m, &why));
    m = sealed(PX_MSG_CLIENT, 9, 3); /* the client, from the first host */
    assert_true(net_msg_check(&p, 1, 0, &m, &why));
    m = sealed(PX_MSG_CLIENT_REPLY, 3, 9); /* to the client, on the first host */
    assert_true(net_msg_check(&p, 0, 1, &m, &why));
    m = sealed(PX_MSG_CLIENT_REPLY, 3, 9);
    assert_false(net_msg_check(&p, 2, 1, &m, &why)); /* the client is not on h2 */
    m = sealed(PX_MSG_CLIENT, 9, 6);
    assert_false(net_msg_check(&p, 2, 1, &m, &why)); /* only h0 speaks for the client */
    m = sealed(PX_MSG_ACCEPT, 6, 1);
    assert_false(net_msg_check(&p, 0, 1, &m, &why)); /* node 6 runs on h2, not h1 */
    assert_non_null(strstr(why, "sender"));
    m = sealed(PX_MSG_ACCEPT, 3, 4);
    assert_false(net_msg_check(&p, 0, 1, &m, &why)); /* node 4 does not run on h0 */
    assert_non_null(strstr(why, "receiver"));
    m = sealed(PX_MSG_TYPE_COUNT, 3, 1);
    assert_false(net_msg_check(&p, 0, 1, &m, &why));
    m = sealed(PX_MSG_NONE, 3, 1);
    assert_false(net_msg_check(&p, 0, 1, &m, &why));
    m = sealed(PX_MSG_ACCEPT, 3, 1);
    m.instance ^= 1; /* one bit flipped on the way */
    assert_false(net_msg_check(&p, 0, 1, &m, &why));
    assert_non_null(strstr(why, "check"));
    struct net_node_status st = {.id = 4};
    assert_true(net_status_check(&p, 1, &st, 1, &why));
    st.id = 0;
    assert_false(net_status_check(&p, 1, &st, 1, &why));
}

/* --- links over loopback TCP -------------------------------------------------------------- */

static struct net_pool link_pool(void)
{
    struct net_pool p;
    memset(&p, 0, sizeof(p));
    p.nodes = 3;
    p.hosts = 3;
    int base = 20000 + (int)(getpid() % 10000) * 3;
    for (uint32_t h = 0; h < 3; h++) {
        snprintf(p.host[h].name, sizeof(p.host[h].name), "h%u", h);
        snprintf(p.host[h].address, sizeof(p.host[h].address), "127.0.0.1");
        p.host[h].port = (uint16_t)(base + (int)h);
        p.host[h].nodes_mask = 1ull << h;
        memcpy(p.host[h].public_key, keys[h][0], 41);
        p.host_of[h] = (uint8_t)h;
    }
    return p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Receives one frame within timeout_ms: its length, or 0. */
static ssize_t recv_within(struct net_link *l, void *buf, size_t cap, uint32_t *host,
                           int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 5) {
        ssize_t n = net_link_recv(l, buf, cap, host);
        if (n != 0)
            return n;
        net_link_wait(l, 5);
    }
    return 0;
}

static void test_link_carries_frames_with_the_authenticated_sender(void **state)
{
    (void)state;
    struct net_pool p = link_pool();
    struct net_link *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(net_link_open(&p, 0, keys[0][1], &a, err, sizeof(err)), 0);
    assert_int_equal(net_link_open(&p, 1, keys[1][1], &b, err, sizeof(err)), 0);
    /* Not connected yet, or connected: either it is queued or it says -EAGAIN; never lost. */
    int rc;
    for (int i = 0; (rc = net_link_send(a, 1, "hello", 5)) == -EAGAIN && i < 2000; i++)
        sleep_ms(1);
    assert_int_equal(rc, 0);
    char buf[64];
    uint32_t from = 99;
    assert_int_equal(recv_within(b, buf, sizeof(buf), &from, 3000), 5);
    assert_int_equal(from, 0);
    assert_memory_equal(buf, "hello", 5);
    /* Host 2 does not listen: nothing is queued for it (ZMQ_IMMEDIATE). */
    assert_int_equal(net_link_send(a, 2, "lost?", 5), -EAGAIN);
    net_link_close(a);
    net_link_close(b);
}

/* A process that knows the server's public key but holds no key of the pool file. */
static void test_link_refuses_a_peer_without_a_pool_key(void **state)
{
    (void)state;
    struct net_pool p = link_pool();
    struct net_link *b = NULL;
    char err[256];
    assert_int_equal(net_link_open(&p, 1, keys[1][1], &b, err, sizeof(err)), 0);
    char pub[41], sec[41], ep[64];
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", (unsigned)p.host[1].port);
    void *ctx = zmq_ctx_new();
    void *stray = zmq_socket(ctx, ZMQ_PUSH);
    void *plain = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(stray, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(plain, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(stray, ZMQ_CURVE_SERVERKEY, keys[1][0], 40);
    zmq_setsockopt(stray, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(stray, ZMQ_CURVE_SECRETKEY, sec, 40);
    assert_int_equal(zmq_connect(stray, ep), 0);
    assert_int_equal(zmq_connect(plain, ep), 0);
    (void)zmq_send(stray, "inject", 6, ZMQ_DONTWAIT);
    (void)zmq_send(plain, "inject", 6, ZMQ_DONTWAIT);
    char buf[64];
    uint32_t from = 99;
    assert_int_equal(recv_within(b, buf, sizeof(buf), &from, 1000), 0);
    /* The pool's own host still gets through. */
    struct net_link *a = NULL;
    assert_int_equal(net_link_open(&p, 0, keys[0][1], &a, err, sizeof(err)), 0);
    int rc;
    for (int i = 0; (rc = net_link_send(a, 1, "ok", 2)) == -EAGAIN && i < 2000; i++)
        sleep_ms(1);
    assert_int_equal(rc, 0);
    assert_int_equal(recv_within(b, buf, sizeof(buf), &from, 3000), 2);
    assert_int_equal(from, 0);
    zmq_close(stray);
    zmq_close(plain);
    zmq_ctx_term(ctx);
    net_link_close(a);
    net_link_close(b);
}

/* A receiver that does not read: the sender hears -EAGAIN after a bounded number of frames,
 * and once the receiver reads, every frame accepted arrives, in order. */
static void test_link_full_queue_is_backpressure_and_loses_nothing(void **state)
{
    (void)state;
    struct net_pool p = link_pool();
    struct net_link *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(net_link_open(&p, 0, keys[0][1], &a, err, sizeof(err)), 0);
    assert_int_equal(net_link_open(&p, 1, keys[1][1], &b, err, sizeof(err)), 0);
    static unsigned char frame[16384];
    uint32_t sent = 0;
    int rc;
    for (int i = 0; (rc = net_link_send(a, 1, frame, sizeof(frame))) == -EAGAIN && i < 2000; i++)
        sleep_ms(1); /* connecting */
    assert_int_equal(rc, 0);
    sent = 1;
    /* Bounded: the high-water marks plus what the kernel's socket buffers hold. */
    for (int idle = 0; idle < 200 && sent < 100000;) {
        memcpy(frame, &sent, sizeof(sent));
        if (net_link_send(a, 1, frame, sizeof(frame)) == 0) {
            sent++;
            idle = 0;
        } else {
            idle++;
            sleep_ms(1);
        }
    }
    assert_true(sent < 100000);
    assert_true(sent >= NET_SNDHWM_FRAMES);
    static unsigned char in[16384];
    uint32_t from, got = 0;
    /* Generous: on a loaded machine the frames in flight take a while to drain. */
    while (recv_within(b, in, sizeof(in), &from, 10000) == (ssize_t)sizeof(in)) {
        uint32_t seq;
        memcpy(&seq, in, sizeof(seq));
        assert_int_equal(seq, got); /* in order, none missing */
        got++;
    }
    assert_int_equal(got, sent);
    net_link_close(a);
    net_link_close(b);
}

static void test_link_open_fails_in_one_line_on_an_address_not_here(void **state)
{
    (void)state;
    struct net_pool p = link_pool();
    snprintf(p.host[0].address, sizeof(p.host[0].address), "192.0.2.1"); /* TEST-NET-1 */
    struct net_link *a = NULL;
    char err[256] = "";
    assert_int_equal(net_link_open(&p, 0, keys[0][1], &a, err, sizeof(err)), -1);
    assert_null(a);
    assert_non_null(strstr(err, "cannot listen on tcp://192.0.2.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_file_good_lists_hosts_nodes_and_default_roles),
        cmocka_unit_test(test_pool_file_secret_of_another_host_is_refused),
        cmocka_unit_test(test_pool_file_secret_others_may_read_or_write_is_refused),
        cmocka_unit_test(test_pool_file_bad_files_give_one_line_naming_file_and_line),
        cmocka_unit_test(test_frame_check_rejects_size_magic_kind_and_forged_host),
        cmocka_unit_test(test_msg_check_rejects_type_sender_receiver_and_damage),
        cmocka_unit_test(test_link_carries_frames_with_the_authenticated_sender),
        cmocka_unit_test(test_link_refuses_a_peer_without_a_pool_key),
        cmocka_unit_test(test_link_full_queue_is_backpressure_and_loses_nothing),
        cmocka_unit_test(test_link_open_fails_in_one_line_on_an_address_not_here),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
