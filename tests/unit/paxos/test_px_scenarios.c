/* test_px_scenarios.c: readable multi-node scenarios for the classic traps, driven by the
 * deterministic harness (px_cluster.c): every run is the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "px_cluster.h"

/* Submits rounds [from, to] to node `at` (Fibonacci increments), then runs to quiescence. */
static void submit_rounds(struct pxc *c, uint16_t at, uint32_t from, uint32_t to)
{
    for (uint32_t r = from; r <= to; r++)
        assert_int_equal(pxc_submit(c, at, 1, r, pxc_fib_number(r - 1)), 0);
}

struct want {
    uint64_t requests;
};

static bool all_applied(struct pxc *c, void *ctx)
{
    const struct want *w = ctx;
    for (uint16_t i = 0; i < c->n; i++)
        if (c->node[i].up && pxc_applied_requests(c, i) < w->requests)
            return false;
    return true;
}

/* Node i's history is the one its apply stream built (the harness's reference state machine
 * recomputed the digest from the entries), whose Fibonacci value is `value`. Returns false,
 * checking nothing, for a node that installed a snapshot: no stream shows what it holds. */
static bool history_is_its_stream(struct pxc *c, uint16_t i, uint64_t value)
{
    const struct px_history *f = px_node_history(c->node[i].px);
    const struct pxc_sm *sm = &c->node[i].st.sm;
    if (!sm->valid)
        return false;
    assert_int_equal(sm->value, value);
    assert_int_equal(sm->requests, f->requests);
    assert_int_equal(sm->applied, f->applied);
    assert_int_equal(sm->digest, f->digest);
    return true;
}

/* Every live learner holds the same state: R requests and one digest, the digest of an apply
 * stream whose value is F(R+1) (at least one learner's stream is known). */
static void assert_converged(struct pxc *c, uint32_t rounds)
{
    const struct px_history *ref = NULL;
    uint32_t streams = 0;
    for (uint16_t i = 0; i < c->n; i++) {
        if (!c->node[i].up)
            continue;
        const struct px_history *f = px_node_history(c->node[i].px);
        assert_int_equal(f->requests, rounds);
        streams += history_is_its_stream(c, i, pxc_fib_number(rounds + 1));
        if (ref == NULL)
            ref = f;
        assert_int_equal(f->digest, ref->digest);
    }
    assert_true(streams > 0);
}

static void test_scenario_single_leader_decides_and_every_learner_applies(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    assert_int_equal(pxc_leader(c), 0);
    submit_rounds(c, 0, 1, 50);
    struct want w = {50};
    assert_true(pxc_until(c, all_applied, &w, 50));
    assert_converged(c, 50);
    assert_int_equal(c->replies_len, 50);
    pxc_free(c);
}

/* The leader dies after some Accepts went out (some values accepted by a minority, some by a
 * majority): the next leader's phase 1 adopts what may have been chosen, fills the rest, and
 * after the client resubmits everything every request is applied exactly once. */
static void test_scenario_leader_dies_after_some_accepts_survivors_agree(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(5, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    submit_rounds(c, 0, 1, 20);
    pxc_run(c, 100000);
    submit_rounds(c, 0, 21, 30);
    pxc_run(c, 7); /* a few ACCEPTs of the new batch delivered, the rest in flight */
    pxc_crash(c, 0);
    pxc_drop_queue(c);
    assert_true(pxc_until(c, pxc_has_leader, NULL, 100));
    int l = pxc_leader(c);
    assert_true(l > 0);
    submit_rounds(c, (uint16_t)l, 1, 30); /* the client resubmits every round */
    struct want w = {30};
    assert_true(pxc_until(c, all_applied, &w, 200));
    assert_converged(c, 30);
    pxc_free(c);
}

/* Drops every k-th message (deterministic loss). */
struct lossy {
    uint64_t count, every;
};

static bool drop_every_kth(const struct px_msg *m, uint16_t to, void *ctx)
{
    (void)m;
    (void)to;
    struct lossy *l = ctx;
    return ++l->count % l->every == 0;
}

/* A lossy network (every 7th message lost), a leader crash and a restart: retransmission,
 * incomplete promises and catch-up still bring every learner to the same state. */
static void test_scenario_lossy_network_with_crash_and_restart_converges(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(5, NULL, 16, 0);
    struct lossy l = {0, 7};
    c->filter = drop_every_kth;
    c->filter_ctx = &l;
    assert_true(pxc_until(c, pxc_has_leader, NULL, 200));
    uint16_t ld = (uint16_t)pxc_leader(c);
    submit_rounds(c, ld, 1, 40);
    for (uint32_t t = 0; t < 5; t++) {
        pxc_run(c, 100000);
        pxc_tick_all(c);
    }
    pxc_crash(c, ld);
    assert_true(pxc_until(c, pxc_has_leader, NULL, 300));
    uint16_t l2 = (uint16_t)pxc_leader(c);
    submit_rounds(c, l2, 1, 80);
    pxc_start_node(c, ld);
    c->filter = NULL;
    struct want w = {80};
    assert_true(pxc_until(c, all_applied, &w, 400));
    for (uint32_t t = 0; t < 20; t++) { /* let the last DECIDEs settle */
        pxc_run(c, 100000);
        pxc_tick_all(c);
    }
    assert_converged(c, 80);
    pxc_free(c);
}

/* --- partitions: a set of cut-off nodes; messages from or to them are lost --- */
struct cut {
    uint64_t nodes;
};

static bool drop_cut(const struct px_msg *m, uint16_t to, void *ctx)
{
    const struct cut *k = ctx;
    return ((k->nodes >> m->from) & 1u) || (to < 64 && ((k->nodes >> to) & 1u));
}

static uint64_t total_campaigns(const struct pxc *c)
{
    uint64_t k = 0;
    for (uint16_t i = 0; i < c->n; i++)
        k += px_node_stats(c->node[i].px)->campaigns;
    return k;
}

/* Duelling proposers: two proposers start phase 1 at the same moment with interleaved
 * messages. The lower ballot is nacked, backs off by rank; one leader emerges and decides. */
static void test_scenario_duelling_proposers_settle_on_one_leader(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(5, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_campaign(c, 1); /* both PREPAREs in flight before any promise */
    assert_true(pxc_until(c, pxc_has_leader, NULL, 100));
    assert_true(total_campaigns(c) <= 3);
    int l = pxc_leader(c);
    submit_rounds(c, (uint16_t)l, 1, 20);
    struct want w = {20};
    assert_true(pxc_until(c, all_applied, &w, 100));
    assert_converged(c, 20);
    assert_int_equal(pxc_leader(c), l); /* no further duel once it leads */
    pxc_free(c);
}

/* Sixteen proposers, the leader killed again and again: each time the lowest live id
 * campaigns first and wins; nobody livelocks (one well-known C library does at 15). */
static void test_scenario_sixteen_proposers_elect_without_livelock(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(16, NULL, 8, 0);
    uint32_t round = 1;
    for (uint16_t kill = 0; kill < 7; kill++) {
        uint64_t before = total_campaigns(c);
        assert_true(pxc_until(c, pxc_has_leader, NULL, 100));
        assert_int_equal(pxc_leader(c), kill); /* the lowest live id */
        assert_true(total_campaigns(c) - before <= 2);
        submit_rounds(c, kill, round, round + 4);
        round += 5;
        pxc_run(c, 1000000);
        pxc_crash(c, kill);
    }
    struct want w = {round - 1};
    assert_true(pxc_until(c, all_applied, &w, 300));
    assert_converged(c, round - 1);
    pxc_free(c);
}

/* The leader dies right after phase 1 (before any ACCEPT): the value an acceptor had accepted
 * from an earlier ballot is still adopted by the next leader (P2c). */
static void test_scenario_leader_dies_after_phase1_value_survives(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    struct cut k = {0};
    c->filter = drop_cut;
    c->filter_ctx = &k;
    assert_int_equal(pxc_submit(c, 0, 1, 1, 0), 0); /* round 1, increment F(0) = 0 */
    pxc_run(c, 100000);                             /* chosen at 0, 1, 2 */
    k.nodes = 1u << 2;                              /* node 2 cut off */
    assert_int_equal(pxc_submit(c, 0, 1, 2, 1), 0); /* round 2: accepted by 0 and 1 */
    pxc_run(c, 100000);
    k.nodes = 0; /* node 2 hears again before the death notice: node 1 campaigns at once */
    pxc_crash(c, 0);
    /* node 1 wins phase 1 with node 2; its own acceptor reported round 2's value */
    assert_true(pxc_until(c, pxc_has_leader, NULL, 100));
    assert_int_equal(pxc_leader(c), 1);
    pxc_crash(c, 1); /* ... and dies right after phase 1 */
    pxc_start_node(c, 0);
    assert_true(pxc_until(c, pxc_has_leader, NULL, 200));
    pxc_start_node(c, 1);
    struct want w = {2};
    assert_true(pxc_until(c, all_applied, &w, 200));
    assert_converged(c, 2); /* round 2 was never resubmitted, yet it is applied */
    pxc_free(c);
}

/* A value accepted by a minority only is superseded: the next leader's phase 1 quorum does
 * not include that acceptor, picks another value for the instance, and the minority acceptor
 * ends up applying the chosen value, not the one it accepted. */
static void test_scenario_value_accepted_by_minority_is_superseded(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(5, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    struct cut k = {(1u << 2) | (1u << 3) | (1u << 4)}; /* only 0 and 1 hear the ACCEPT */
    c->filter = drop_cut;
    c->filter_ctx = &k;
    assert_int_equal(pxc_submit(c, 0, 1, 1, 777), 0);
    pxc_run(c, 100000);
    pxc_crash(c, 0);
    k.nodes = 1u << 1; /* the next phase 1 happens without node 1 */
    assert_true(pxc_until(c, pxc_has_leader, NULL, 200));
    int l = pxc_leader(c);
    assert_int_equal(l, 2);
    submit_rounds(c, (uint16_t)l, 1, 3); /* the real rounds */
    pxc_run(c, 100000);
    k.nodes = 0;
    struct want w = {3};
    assert_true(pxc_until(c, all_applied, &w, 200));
    for (uint16_t i = 1; i < 5; i++) {
        const struct px_history *f = px_node_history(c->node[i].px);
        assert_int_equal(f->requests, 3); /* 777 (seq 1) was superseded by round 1 */
        assert_true(history_is_its_stream(c, i, pxc_fib_number(4)));
        assert_int_equal(f->digest, px_node_history(c->node[1].px)->digest);
    }
    pxc_free(c);
}

/* A learner restarts after the others truncated the entries it misses: it receives a
 * snapshot, installs it, and continues with the entries after it. */
static void test_scenario_learner_restarting_behind_truncated_log_gets_snapshot(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 16, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    submit_rounds(c, 0, 1, 10);
    pxc_run(c, 100000);
    pxc_crash(c, 2);
    submit_rounds(c, 0, 11, 400);
    for (uint32_t t = 0; t < 20; t++) { /* acks + hints: everything <= 400 dropped */
        pxc_run(c, 100000);
        pxc_tick_all(c);
    }
    pxc_start_node(c, 2);
    submit_rounds(c, 0, 401, 420);
    struct want w = {420};
    assert_true(pxc_until(c, all_applied, &w, 200));
    assert_converged(c, 420);
    assert_int_equal(px_node_stats(c->node[2].px)->snapshots_installed, 1);
    pxc_free(c);
}

/* Two leaders at once: the old leader is cut off, a new one is elected; the old one still
 * believes it leads and proposes. Its ACCEPTs are nacked by acceptors promised to the higher
 * ballot; it steps down, and nothing it proposed alone is ever chosen. */
static void test_scenario_two_leaders_at_once_only_one_gets_values_chosen(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(5, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    submit_rounds(c, 0, 1, 5);
    pxc_run(c, 100000);
    struct cut k = {1u << 0};
    c->filter = drop_cut;
    c->filter_ctx = &k;
    for (uint32_t t = 0; t < 60 && pxc_leader(c) != -2; t++) {
        pxc_tick_all(c); /* node 0 keeps heartbeating into the void */
        pxc_run(c, 100000);
    }
    assert_int_equal(pxc_leader(c), -2);                    /* both 0 and another node lead */
    assert_int_equal(pxc_submit(c, 0, 1, 100, 1000000), 0); /* the old leader proposes */
    k.nodes = 0;                                            /* heal */
    for (uint32_t t = 0; t < 3; t++) {                      /* its next heartbeat is nacked */
        pxc_tick(c, 0);
        pxc_run(c, 100000);
    }
    assert_false(px_node_is_leader(c->node[0].px)); /* nacked: stepped down */
    assert_true(pxc_leader(c) > 0);
    int l = pxc_leader(c);
    submit_rounds(c, (uint16_t)l, 6, 10);
    struct want w = {10};
    assert_true(pxc_until(c, all_applied, &w, 200));
    for (uint16_t i = 0; i < 5; i++) {
        const struct px_history *f = px_node_history(c->node[i].px);
        assert_int_equal(f->requests, 10); /* seq 100 was never chosen */
        assert_true(history_is_its_stream(c, i, pxc_fib_number(11)));
        assert_int_equal(f->digest, px_node_history(c->node[0].px)->digest);
    }
    pxc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenario_duelling_proposers_settle_on_one_leader),
        cmocka_unit_test(test_scenario_sixteen_proposers_elect_without_livelock),
        cmocka_unit_test(test_scenario_leader_dies_after_phase1_value_survives),
        cmocka_unit_test(test_scenario_value_accepted_by_minority_is_superseded),
        cmocka_unit_test(test_scenario_learner_restarting_behind_truncated_log_gets_snapshot),
        cmocka_unit_test(test_scenario_two_leaders_at_once_only_one_gets_values_chosen),
        cmocka_unit_test(test_scenario_lossy_network_with_crash_and_restart_converges),
        cmocka_unit_test(test_scenario_leader_dies_after_some_accepts_survivors_agree),
        cmocka_unit_test(test_scenario_single_leader_decides_and_every_learner_applies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
