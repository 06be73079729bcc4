/* test_driver.c: the node driver (src/node/driver.c) under backpressure, run over the
 * simulator's transport and store (tests/sim) with tiny rings, so that every outcome is
 * deterministic: a wait that can never end fails the test instead of hanging it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cmd.h"
#include "node/driver.h"
#include "sim.h"

/* Ticks a two-node pool gets to decide and apply ROUNDS rounds through 2-slot rings: far more
 * than it needs (about 150), few enough that a stuck pool fails fast. */
#define TICKS_MAX 20000u
#define ROUNDS    64u

/* The cooperative scheduler of a waiting node: while it waits, the wire delivers and every
 * node that is not itself waiting runs once -- what the other processes do meanwhile on a
 * real machine. If every other node waits too, nobody can ever drain anything. */
static bool waiting[SIM_NODES_MAX];
static uint32_t idle_waits;

static void cooperative_wait(struct sim *s, uint16_t id, uint32_t blocked_on)
{
    waiting[id] = true;
    size_t moved = sim_net_take(s, -1, -1, -1, SIZE_MAX, false);
    bool ran = false;
    for (uint16_t j = 0; j < s->n; j++) {
        if (j == id || waiting[j] || !s->node[j].up)
            continue;
        sim_activate(s, j, false);
        ran = true;
    }
    waiting[id] = false;
    if (!ran)
        fail_msg("node %u waits for room towards %u while every other node waits too: they "
                 "wait on each other for ever",
                 id, blocked_on);
    idle_waits = moved > 0 ? 0 : idle_waits + 1;
    if (idle_waits > 1000)
        fail_msg("node %u waits for room towards %u and nothing moves", id, blocked_on);
}

static void two_node_pool(struct sim *s, struct px_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->nodes = 2;
    for (uint16_t j = 0; j < 2; j++)
        cfg->roles[j] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    cfg->window_max = 32;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 2;
    cfg->batch = false; /* one ACCEPTED per ACCEPT: as much traffic back as forth */
    cfg->seed = 1;
    assert_int_equal(sim_init(s, cfg, 1, stdout, false), 0);
    s->ring_slots = 2; /* 1 carries less than the pool's own background traffic */
    s->bcast_slots = 2;
    s->outbox_max = 1;
    s->wait_hook = cooperative_wait;
    memset(waiting, 0, sizeof(waiting));
    idle_waits = 0;
    sim_set_rounds(s, ROUNDS, 1, 32);
}

static bool full_towards(const struct sim *s, uint16_t from, uint16_t to)
{
    return s->node[from].up && sim_tp_queued_to(s->node[from].tp, to) >= s->outbox_max;
}

/* DESIGN.md: "a full ring leaves the message in the sender's bounded per-peer outbox, the
 * sender keeps draining its own inbound rings". Two nodes whose outboxes towards each other
 * are full must not wait for each other: each keeps reading, so both drain. */
static void test_nodes_with_full_outboxes_towards_each_other_keep_draining_their_input(void **state)
{
    (void)state;
    static struct sim s;
    struct px_config cfg;
    two_node_pool(&s, &cfg);
    bool both_full = false;
    uint32_t t = 0;
    while (t++ < TICKS_MAX && s.viol == SIM_V_NONE &&
           !(s.submitted == s.rounds && sim_converged(&s, true))) {
        sim_tick(&s, true, true, true);
        both_full |= full_towards(&s, 0, 1) && full_towards(&s, 1, 0);
    }
    if (s.viol != SIM_V_NONE)
        fail_msg("violation %s: %s", sim_viol_names[s.viol], s.viol_msg);
    assert_true(both_full); /* the situation under test did arise */
    assert_true(sim_converged(&s, true));
    sim_check_final(&s);
    assert_int_equal(s.viol, SIM_V_NONE);
    assert_int_equal(px_node_history(s.node[0].px)->requests, ROUNDS);
    sim_free(&s);
}

/* --- the membership view: a peer killed and restarted between two looks --- */

/* A transport that takes every message and delivers none: what the core sends is counted. */
static uint32_t null_recv(struct transport *t, struct px_msg *out, uint32_t max)
{
    (void)t;
    (void)out;
    (void)max;
    return 0;
}
static uint32_t prepares_sent;
static int null_send(struct transport *t, const struct px_msg *m)
{
    (void)t;
    prepares_sent += m->type == PX_MSG_PREPARE;
    return 0;
}
static uint32_t null_flush(struct transport *t)
{
    (void)t;
    return 0;
}
static void null_wait(struct transport *t, uint64_t ns)
{
    (void)t;
    (void)ns;
}
static uint32_t peer_downs;
static void null_peer_down(struct transport *t, uint16_t peer)
{
    (void)t;
    (void)peer;
    peer_downs++;
}
static const struct transport_ops null_ops = {
    null_recv, null_send, null_flush, null_wait, null_peer_down, NULL,
};

static struct driver_view view;
static void view_membership(void *ctx, struct driver_view *out)
{
    (void)ctx;
    *out = view;
}
static uint64_t clock_ns;
static uint64_t view_now(void *ctx)
{
    (void)ctx;
    return clock_ns;
}

/* A simulated 3-node pool in s (every node every role) and node 1's core, in *mem. */
static struct px_node *node_1_of_3(struct sim *s, void **mem)
{
    struct px_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.nodes = 3;
    for (uint16_t j = 0; j < 3; j++)
        cfg.roles[j] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    cfg.window_max = 8;
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.seed = 1;
    assert_int_equal(sim_init(s, &cfg, 1, stdout, false), 0);
    cfg.id = 1;
    assert_int_equal(posix_memalign(mem, 64, px_node_size(&cfg)), 0);
    struct px_node *core = NULL;
    assert_int_equal(px_node_init(*mem, px_node_size(&cfg), &cfg, &core), 0);
    return core;
}

/* Node 0, the leader, is SIGKILLed and restarted before node 1 looks again: the alive mask is
 * the same as before, only its incarnation changed. Node 1 must still hear the death (and, as
 * the next proposer, campaign at once), then the peer's return. */
static void test_driver_tells_the_core_of_a_peer_restarted_between_two_looks(void **state)
{
    (void)state;
    static struct sim s;
    void *core_mem = NULL;
    struct px_node *core = node_1_of_3(&s, &core_mem);
    struct transport t = {.ops = &null_ops, .self = 1, .nodes = 3};
    struct store *st = sim_store_open(&s, 1);
    assert_non_null(st);
    struct driver d;
    const struct driver_config dc = {.id = 1, .nodes = 3, .batch_max = 16, .tick_ns = 1000};
    const struct driver_env env = {.now_ns = view_now, .membership = view_membership};
    view = (struct driver_view){.alive_mask = 7, .epoch = 1};
    assert_int_equal(driver_init(&d, &dc, &env, core, &t, st), 0);
    assert_int_equal(driver_start(&d), 0);
    struct px_ready *r = calloc(1, sizeof(*r));
    struct px_msg hb = {.type = PX_MSG_HEARTBEAT, .from = 0, .to = PX_TO_ALL};
    hb.ballot = px_ballot_make(1, 0);
    px_node_step(core, &hb, r);
    assert_int_equal(px_node_leader(core), 0);
    free(r);
    prepares_sent = peer_downs = 0;
    /* died and restarted: two epoch bumps, the same alive mask, a new incarnation */
    view = (struct driver_view){.alive_mask = 7, .epoch = 3, .restarted_mask = 1};
    assert_int_equal(driver_run_once(&d), 0);
    assert_int_equal(peer_downs, 1);
    assert_int_equal(prepares_sent, 1); /* node 1 is the next proposer: it campaigned */
    assert_int_equal(px_node_stats(core)->campaigns, 1);
    /* the restarted node counts as alive again: node 2's rank is behind both 0 and 1 */
    view.restarted_mask = 0;
    assert_int_equal(driver_run_once(&d), 0);
    assert_int_equal(peer_downs, 1);
    driver_fini(&d);
    store_close(st);
    free(core_mem);
    sim_free(&s);
}

/* A library pool's store keeps the log from its last snapshot on, maybe several times what the
 * core's ring holds. Loading it must keep the bytes of the commands the core's window holds:
 * the plane holds 2 * PX_LOG_MAX + PX_QUEUE_MAX commands, and filled in log order it was full
 * of old ones, refusing the newest (the ones a leader re-proposes and a lagging peer asks). */
static void test_a_log_longer_than_the_ring_keeps_the_window_bytes_at_load(void **state)
{
    (void)state;
    static struct sim s;
    void *core_mem = NULL;
    struct px_node *core = node_1_of_3(&s, &core_mem);
    struct transport t = {.ops = &null_ops, .self = 1, .nodes = 3};
    struct store *st = sim_store_open(&s, 1);
    assert_non_null(st);
    const px_inst_t n = 3 * PX_LOG_MAX;
    for (px_inst_t i = 1; i <= n; i++) {
        if (i % 256 == 1) /* a batch holds at most PX_READY_RECS_MAX records */
            assert_int_equal(store_begin(st), 0);
        struct px_rec r = {.type = PX_REC_DECIDED, .instance = i, .ballot = px_ballot_make(1, 0)};
        r.value.client_id = 5u | PX_VALUE_PAYLOAD;
        r.value.seq = (uint32_t)i;
        r.value.word = i;
        uint64_t cmd[2] = {i, ~i};
        assert_int_equal(store_put_cmd(st, &r, cmd, sizeof(cmd)), 0);
        if (i % 256 == 0 || i == n)
            assert_int_equal(store_commit(st), 0);
    }
    struct driver d;
    const struct driver_config dc = {
        .id = 1, .nodes = 3, .batch_max = 16, .tick_ns = 1000, .cmd_max = 64};
    const struct driver_env env = {.now_ns = view_now, .membership = view_membership};
    view = (struct driver_view){.alive_mask = 7, .epoch = 1};
    assert_int_equal(driver_init(&d, &dc, &env, core, &t, st), 0);
    struct px_durable dur;
    assert_int_equal(driver_recover(&d, &dur), 0);
    uint32_t missing = 0;
    for (px_inst_t i = n - PX_LOG_MAX + 1; i <= n; i++) {
        struct px_value v = {.client_id = 5u | PX_VALUE_PAYLOAD, .seq = (uint32_t)i};
        missing += payload_get(&d.pay, cmd_key(&v)) == NULL;
    }
    assert_int_equal(missing, 0);
    assert_true(d.pay.used <= PX_LOG_MAX + 256u); /* the old ones went */
    driver_fini(&d);
    store_close(st);
    free(core_mem);
    sim_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_nodes_with_full_outboxes_towards_each_other_keep_draining_their_input),
        cmocka_unit_test(test_driver_tells_the_core_of_a_peer_restarted_between_two_looks),
        cmocka_unit_test(test_a_log_longer_than_the_ring_keeps_the_window_bytes_at_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
