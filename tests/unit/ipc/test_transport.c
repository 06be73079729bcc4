/* test_transport.c: the node's transports (src/node/transport.h) over a real segment and real
 * socketpairs: every message is checked on arrival, and a damaged or misrouted one is dropped,
 * counted and reported once per sender, never handed to the core; a sender killed in the middle
 * of a write never leaves a link out of step. Endpoints: node 0, node 1 and the client (2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/socket.h>

#include "ipc/check.h"
#include "ipc/doorbell.h"
#include "ipc/segment.h"
#include "ipc_test.h"
#include "node/transport.h"

#define NODES      2u
#define CLIENT     NODES
#define ENDPOINTS  (NODES + 1u)
#define TEST_SLOTS 64u
#define RECV_MAX   64u
#define ERR_MAX    256
/* Messages a filling sender queues per flush. */
#define FILL_BATCH 1000u
/* Bytes of captured stderr a test looks at. */
#define CAPTURE_MAX 4096

struct fx {
    char name[IPC_SEGMENT_NAME_MAX];
    struct ipc_segment *seg;
    struct transport *t[ENDPOINTS];
};

static int fx_setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    snprintf(f.name, sizeof(f.name), "/paxos-shm-test-%ld-transport", (long)getpid());
    struct ipc_layout l = {.endpoints = ENDPOINTS,
                           .ring_slots = TEST_SLOTS,
                           .bcast_slots = TEST_SLOTS,
                           .bcast_producers = NODES,
                           .user_bytes = 0};
    char err[ERR_MAX];
    if (ipc_segment_create(f.name, &l, &f.seg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    for (uint16_t e = 0; e < ENDPOINTS; e++) {
        ipc_segment_ctl(f.seg, e)->alive = 1;
        if (transport_shm_create(f.seg, e, NODES, &f.t[e]) != 0)
            return -1;
    }
    *state = &f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (uint16_t e = 0; e < ENDPOINTS; e++)
        f->t[e]->ops->destroy(f->t[e]);
    ipc_segment_close(f->seg);
    ipc_segment_unlink(f->name);
    return 0;
}

static struct px_msg msg(uint16_t from, uint16_t to, uint64_t instance)
{
    struct px_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PX_MSG_ACCEPT;
    m.from = from;
    m.to = to;
    m.ballot = px_ballot_make(7, from);
    m.instance = instance;
    m.u.accept.value.word = instance * 1000003u;
    m.u.accept.value.client_id = 1;
    m.u.accept.value.seq = (uint32_t)instance;
    return m;
}

static void send_ok(struct transport *t, uint16_t from, uint16_t to, uint64_t instance)
{
    struct px_msg m = msg(from, to, instance);
    assert_int_equal(transport_send(t, &m), 0);
}

/* Receives what is there; checks that exactly the given instances arrived, in order. */
static void recv_expect(struct transport *t, const uint64_t *instances, uint32_t n)
{
    struct px_msg in[RECV_MAX];
    uint32_t got = transport_recv(t, in, RECV_MAX);
    assert_int_equal(got, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(in[i].instance, instances[i]);
}

/* The slot of the ring from -> to that holds the message published at index k. */
static unsigned char *ring_slot(struct fx *f, uint16_t from, uint16_t to, uint32_t k)
{
    struct ipc_ring *r = ipc_segment_ring(f->seg, from, to);
    return r->slots + (size_t)(k % ipc_ring_capacity(r)) * IPC_SLOT_BYTES;
}

static unsigned char *bcast_slot(struct fx *f, uint16_t producer, uint32_t k)
{
    struct ipc_bcast *b = ipc_segment_bcast(f->seg, producer);
    return b->slots + (size_t)(k % ipc_bcast_capacity(b)) * IPC_SLOT_BYTES;
}

/* Runs fn with stderr going to a temporary file; returns what was written there. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t len)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, len - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

static uint32_t count_lines(const char *s)
{
    uint32_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void test_shm_transport_drops_a_damaged_message_and_delivers_the_others(void **state)
{
    struct fx *f = *state;
    for (uint64_t i = 1; i <= 3; i++)
        send_ok(f->t[0], 0, 1, i);
    assert_int_equal(transport_flush(f->t[0]), 0);
    ring_slot(f, 0, 1, 1)[40] ^= 0x10; /* one bit of the second message's increment */
    const uint64_t want[] = {1, 3};
    recv_expect(f->t[1], want, 2);
    assert_int_equal(f->t[1]->stats.bad_messages, 1);
    assert_int_equal(f->t[1]->stats.received, 2);
}

static void test_shm_transport_drops_a_torn_broadcast_message(void **state)
{
    struct fx *f = *state;
    send_ok(f->t[0], 0, PX_TO_ALL, 1);
    send_ok(f->t[0], 0, PX_TO_ALL, 2);
    assert_int_equal(transport_flush(f->t[0]), 0);
    /* The tear of the report: the second half of message 1 holds message 2's bytes. */
    memcpy(bcast_slot(f, 0, 0) + 32, bcast_slot(f, 0, 1) + 32, 32);
    const uint64_t want[] = {2};
    recv_expect(f->t[1], want, 1);
    assert_int_equal(f->t[1]->stats.bad_messages, 1);
}

static void test_shm_transport_drops_a_whole_message_on_another_senders_ring(void **state)
{
    struct fx *f = *state;
    struct px_msg m = msg(1, 0, 5); /* claims node 1 sent it, but node 0's ring carries it */
    ipc_check_seal(&m, offsetof(struct px_msg, check));
    assert_int_equal(ipc_ring_push(ipc_segment_ring(f->seg, 0, 1), &m, 1), 1);
    recv_expect(f->t[1], NULL, 0);
    assert_int_equal(f->t[1]->stats.bad_messages, 1);
}

struct damage_run {
    struct fx *f;
    uint32_t rounds;
};

/* Node 0 and the client each send damaged messages to node 1, several rounds. */
static void damage_rounds(void *arg)
{
    struct damage_run *d = arg;
    struct fx *f = d->f;
    for (uint32_t r = 0; r < d->rounds; r++) {
        send_ok(f->t[0], 0, 1, 10 + r);
        send_ok(f->t[CLIENT], CLIENT, 1, 20 + r);
        assert_int_equal(transport_flush(f->t[0]), 0);
        assert_int_equal(transport_flush(f->t[CLIENT]), 0);
        ring_slot(f, 0, 1, r)[17] ^= 0x01;
        ring_slot(f, CLIENT, 1, r)[63] ^= 0x80;
        recv_expect(f->t[1], NULL, 0);
    }
}

static void test_shm_transport_names_each_damaging_sender_once_on_stderr(void **state)
{
    struct fx *f = *state;
    struct damage_run d = {.f = f, .rounds = 5};
    char text[CAPTURE_MAX];
    capture_stderr(damage_rounds, &d, text, sizeof(text));
    assert_int_equal(f->t[1]->stats.bad_messages, 10);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "node 1: dropped a damaged message from node 0"));
    assert_non_null(strstr(text, "node 1: dropped a damaged message from the client"));
}

/* ---- socket transport ---- */

struct sock_fx {
    struct fx shm; /* the segment holds the alive flags */
    struct sock_mesh *mesh;
};

static int sock_setup(void **state)
{
    static struct sock_fx f;
    if (fx_setup(state) != 0)
        return -1;
    f.shm = *(struct fx *)*state;
    if (transport_sock_mesh_create(ENDPOINTS, &f.mesh) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int sock_teardown(void **state)
{
    struct sock_fx *f = *state;
    void *shm = &f->shm;
    transport_sock_mesh_destroy(f->mesh);
    return fx_teardown(&shm);
}

static struct transport *sock_transport(struct sock_fx *f, uint16_t self)
{
    struct transport *t = NULL;
    assert_int_equal(transport_sock_create(f->mesh, f->shm.seg, self, NODES, &t), 0);
    return t;
}

/* Receives until nothing more arrives; returns how many messages, the last one in *last. */
static uint32_t sock_drain(struct transport *t, struct px_msg *last)
{
    struct px_msg in[RECV_MAX];
    uint32_t total = 0;
    for (int idle = 0; idle < 3;) {
        uint32_t n = transport_recv(t, in, RECV_MAX);
        if (n == 0) {
            idle++;
            continue;
        }
        idle = 0;
        total += n;
        *last = in[n - 1];
    }
    return total;
}

static void
test_sock_transport_a_partial_write_of_a_dead_sender_leaves_the_link_in_step(void **state)
{
    struct sock_fx *f = *state;
    /* What an incarnation of node 0 killed in the middle of a write leaves in the link. */
    struct px_msg half = msg(0, 1, 99);
    transport_seal(&half);
    int fd = transport_sock_mesh_fd(f->mesh, 0, 1);
    assert_int_equal(send(fd, &half, 10, MSG_DONTWAIT), 10);
    /* Its next incarnation sends three messages. */
    struct transport *a = sock_transport(f, 0), *b = sock_transport(f, 1);
    for (uint64_t i = 1; i <= 3; i++)
        send_ok(a, 0, 1, i);
    assert_int_equal(transport_flush(a), 0);
    const uint64_t want[] = {1, 2, 3};
    recv_expect(b, want, 3);
    assert_int_equal(b->stats.bad_messages, 1); /* the fragment: dropped and counted */
    a->ops->destroy(a);
    b->ops->destroy(b);
}

struct fill_run {
    struct sock_fx *f;
    uint32_t full; /* child -> parent: the link is full */
};

/* Child: node 0 sends until its link to node 1 is full, then waits to be killed. */
static int sock_fill_until_full(void *arg)
{
    struct fill_run *run = arg;
    struct transport *a = NULL;
    if (transport_sock_create(run->f->mesh, run->f->shm.seg, 0, NODES, &a) != 0)
        return 2;
    /* Batches of FILL_BATCH: one write each, which the kernel may cut anywhere. */
    for (uint64_t i = 1;;) {
        for (uint32_t k = 0; k < FILL_BATCH; k++, i++) {
            struct px_msg m = msg(0, 1, i);
            if (transport_send(a, &m) != 0)
                return 3;
        }
        if (transport_flush(a) > 0)
            break;
    }
    uatomic_set(&run->full, 1);
    for (;;)
        pause();
}

static void test_sock_transport_sender_killed_with_a_full_link_leaves_the_link_in_step(void **state)
{
    struct sock_fx *f = *state;
    /* A send buffer whose half (the kernel's chunk for one write) is no multiple of a message,
     * so a write into a nearly full link can stop inside a message. */
    int sndbuf = 10000;
    int fd = transport_sock_mesh_fd(f->mesh, 0, 1);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    struct fill_run *run = ipc_test_shared(sizeof(*run));
    run->f = f;
    pid_t child = ipc_test_fork(sock_fill_until_full, run);
    unsigned spins = 0;
    while (uatomic_read(&run->full) == 0)
        ipc_test_backoff(&spins);
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(ipc_test_wait(child), 100 + SIGKILL);
    munmap(run, sizeof(*run));
    /* Node 0 restarted: its first message must arrive whole after what the dead one sent. */
    struct transport *a = sock_transport(f, 0), *b = sock_transport(f, 1);
    send_ok(a, 0, 1, 1000000);
    struct px_msg last;
    memset(&last, 0, sizeof(last));
    uint32_t got = 0;
    while (transport_flush(a) > 0) /* the link is full: make room for it */
        got += sock_drain(b, &last);
    got += sock_drain(b, &last);
    print_message("killed sender: %u messages received after it filled the link\n", got);
    assert_true(got > 1);
    assert_int_equal(b->stats.bad_messages, 0);
    assert_int_equal(last.instance, 1000000);
    a->ops->destroy(a);
    b->ops->destroy(b);
}

/* The transport obeys the core's PX_FLAG_LAZY and nothing else: a marked message (of any type)
 * leaves a sleeping reader asleep, an unmarked one (of any type) wakes it. */
static void test_shm_transport_wakes_the_reader_exactly_for_unmarked_messages(void **state)
{
    struct fx *f = *state;
    struct ipc_doorbell *bell = &ipc_segment_ctl(f->seg, 1)->bell;
    ipc_doorbell_prepare(bell); /* node 1 announced sleep */
    struct px_msg m = msg(0, 1, 1);
    m.flags = PX_FLAG_LAZY; /* an ACCEPT, marked: the type does not matter */
    assert_int_equal(transport_send(f->t[0], &m), 0);
    assert_int_equal(transport_flush(f->t[0]), 0);
    assert_int_equal(uatomic_read(&bell->word), 1);
    assert_int_equal(ipc_doorbell_wake_syscalls(bell), 0);
    m = msg(0, 1, 2);
    m.type = PX_MSG_DECIDE; /* unmarked: the type does not matter either */
    assert_int_equal(transport_send(f->t[0], &m), 0);
    assert_int_equal(transport_flush(f->t[0]), 0);
    assert_int_equal(uatomic_read(&bell->word), 0);
    assert_int_equal(ipc_doorbell_wake_syscalls(bell), 1);
    const uint64_t both[] = {1, 2};
    recv_expect(f->t[1], both, 2);
}

/* A flush is one batch: every queued message is published, and each sleeping reader gets one
 * wake however many messages (and broadcast plus point-to-point) it was sent. */
static void test_shm_transport_flush_wakes_each_sleeping_reader_once_per_batch(void **state)
{
    struct fx *f = *state;
    struct ipc_doorbell *node1 = &ipc_segment_ctl(f->seg, 1)->bell;
    struct ipc_doorbell *client = &ipc_segment_ctl(f->seg, CLIENT)->bell;
    ipc_doorbell_prepare(node1);
    ipc_doorbell_prepare(client);
    for (uint64_t i = 1; i <= 3; i++) {
        struct px_msg to_node = msg(0, 1, i), to_all = msg(0, PX_TO_ALL, 10 + i),
                      to_client = msg(0, CLIENT, 20 + i);
        assert_int_equal(transport_send(f->t[0], &to_node), 0);
        assert_int_equal(transport_send(f->t[0], &to_all), 0);
        assert_int_equal(transport_send(f->t[0], &to_client), 0);
    }
    assert_int_equal(transport_flush(f->t[0]), 0);
    assert_int_equal(uatomic_read(&node1->word), 0);
    assert_int_equal(uatomic_read(&client->word), 0);
    assert_int_equal(ipc_doorbell_wake_syscalls(node1), 1);
    assert_int_equal(ipc_doorbell_wake_syscalls(client), 1);
    struct px_msg in[RECV_MAX];
    assert_int_equal(transport_recv(f->t[1], in, RECV_MAX), 6);
    const uint64_t replies[] = {21, 22, 23};
    recv_expect(f->t[CLIENT], replies, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_shm_transport_drops_a_damaged_message_and_delivers_the_others, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(test_shm_transport_drops_a_torn_broadcast_message, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_shm_transport_flush_wakes_each_sleeping_reader_once_per_batch, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_shm_transport_drops_a_whole_message_on_another_senders_ring, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_shm_transport_names_each_damaging_sender_once_on_stderr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_shm_transport_wakes_the_reader_exactly_for_unmarked_messages, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_sock_transport_a_partial_write_of_a_dead_sender_leaves_the_link_in_step,
            sock_setup, sock_teardown),
        cmocka_unit_test_setup_teardown(
            test_sock_transport_sender_killed_with_a_full_link_leaves_the_link_in_step, sock_setup,
            sock_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
