/* test_px_rotation.c: planned rotation: with rotate_every = K the leader hands leadership to
 * the next live proposer (id order, wrapping) every K decided instances (a planned phase 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

/* Submits one round at a time to whoever leads, running until it is applied everywhere;
 * records the leader that decided each round. */
static void run_rounds(struct pxc *c, uint32_t rounds, int *leader_of)
{
    for (uint32_t r = 1; r <= rounds; r++) {
        assert_true(pxc_until(c, pxc_has_leader, NULL, 200));
        int l = pxc_leader(c);
        leader_of[r] = l;
        assert_int_equal(pxc_submit(c, (uint16_t)l, 1, r, pxc_fib_number(r - 1)), 0);
        pxc_run(c, 100000);
    }
    for (uint32_t t = 0; t < 40; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
}

static void test_rotation_hands_leadership_to_next_proposer_every_k_decisions(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 5);
    int leader_of[31];
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    run_rounds(c, 30, leader_of);
    /* rounds 1-5 at 0, 6-10 at 1, 11-15 at 2, 16-20 at 0 ... */
    for (uint32_t r = 1; r <= 30; r++)
        assert_int_equal(leader_of[r], (int)(((r - 1) / 5) % 3));
    for (uint16_t i = 0; i < 3; i++) {
        const struct px_history *f = px_node_history(c->node[i].px);
        const struct pxc_sm *sm = &c->node[i].st.sm;
        assert_int_equal(f->requests, 30);
        assert_true(sm->valid);
        assert_int_equal(sm->value, pxc_fib_number(31)); /* F(R+1) */
        assert_int_equal(sm->requests, f->requests);
        assert_int_equal(sm->applied, f->applied);
        assert_int_equal(sm->digest, f->digest);
        assert_int_equal(f->digest, px_node_history(c->node[0].px)->digest);
        assert_int_equal(px_node_stats(c->node[i].px)->elections_won, i == 0 ? 3 : 2);
    }
    pxc_free(c);
}

static void test_rotation_skips_a_dead_proposer(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 4, 5);
    int leader_of[11];
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    pxc_crash(c, 1);
    run_rounds(c, 10, leader_of);
    for (uint32_t r = 1; r <= 5; r++)
        assert_int_equal(leader_of[r], 0);
    for (uint32_t r = 6; r <= 10; r++)
        assert_int_equal(leader_of[r], 2);
    pxc_free(c);
}

static void test_rotation_skips_nodes_that_are_not_proposers(void **state)
{
    (void)state;
    uint64_t all = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    uint64_t roles[3] = {all, PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, all};
    struct pxc *c = pxc_new(3, roles, 4, 3);
    int leader_of[10];
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    run_rounds(c, 9, leader_of);
    for (uint32_t r = 1; r <= 9; r++)
        assert_int_equal(leader_of[r], ((r - 1) / 3) % 2 == 0 ? 0 : 2);
    pxc_free(c);
}

static void test_rotation_without_another_proposer_keeps_leading(void **state)
{
    (void)state;
    uint64_t roles[3] = {PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER,
                         PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER};
    struct pxc *c = pxc_new(3, roles, 4, 2);
    int leader_of[9];
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    run_rounds(c, 8, leader_of);
    for (uint32_t r = 1; r <= 8; r++)
        assert_int_equal(leader_of[r], 0);
    assert_int_equal(px_node_stats(c->node[0].px)->elections_won, 1);
    pxc_free(c);
}

/* What one leader call produced: the highest instance proposed, replies and hand-overs. */
struct lead_out {
    px_inst_t proposed_hi;
    uint32_t replies, takeovers;
};

static void collect(struct px_ready *r, struct lead_out *o)
{
    for (uint32_t i = 0; i < r->msgs_len; i++) {
        const struct px_msg *m = &r->msgs[i];
        if (m->type == PX_MSG_ACCEPT && m->instance > o->proposed_hi)
            o->proposed_hi = m->instance;
        o->replies += m->type == PX_MSG_CLIENT_REPLY;
        o->takeovers += m->type == PX_MSG_TAKEOVER;
    }
    px_ready_clear(r);
}

/* One ACCEPTED range can decide more instances than a call has room to reply to
 * (PX_STEP_OUTPUT_MAX); the rest are decided on later calls. When that range also completes
 * the rotation period, the leader stops proposing to hand over -- and it used to stop deciding
 * too: its last instances stayed undecided with a quorum of acks, never resent, and the pool
 * stalled with the leader heartbeating (a --rotate 1000 --window 1024 chaos run, 3 of 4). */
static void
test_rotation_leader_keeps_deciding_a_long_accepted_range_while_handing_over(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    cfg.window_max = 1024;
    cfg.rotate_every = 600;
    cfg.batch = true;
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    struct lead_out o = {0};
    px_ballot_t b = 0;
    while (b == 0) { /* campaign, then node 1's empty promise makes a quorum */
        px_node_tick(n, r);
        int k = pxu_find(r, PX_MSG_PREPARE, 0);
        if (k >= 0)
            b = r->msgs[k].ballot;
        px_ready_clear(r);
    }
    struct px_msg p = pxu_msg(PX_MSG_PROMISE, 1, 0, b, 1);
    px_node_step(n, &p, r);
    assert_true(px_node_is_leader(n));
    px_ready_clear(r);
    uint32_t values = 1000;
    for (uint32_t seq = 1; seq <= values; seq++) {
        struct px_value v = {.word = seq, .client_id = 9, .seq = seq};
        assert_int_equal(px_node_submit(n, &v, r), 0);
        collect(r, &o);
    }
    /* Node 1 acknowledges in ranges of at most 200 until 500 are decided: the window grows
     * to hold more than a call can reply to. */
    px_inst_t acked = 0;
    while (acked < 500) {
        px_inst_t hi = o.proposed_hi < acked + 200 ? o.proposed_hi : acked + 200;
        struct px_msg m = pxu_msg(PX_MSG_ACCEPTED, 1, 0, b, acked + 1);
        m.u.accepted.hi = hi;
        px_node_step(n, &m, r);
        collect(r, &o);
        acked = hi;
    }
    assert_int_equal(o.replies, acked);
    for (int k = 0; k < 4; k++) { /* each call proposes what its output room allows */
        px_node_flush(n, r);
        collect(r, &o);
    }
    assert_true(o.proposed_hi >= acked + PX_STEP_OUTPUT_MAX); /* more in flight than one call */
    struct px_msg m = pxu_msg(PX_MSG_ACCEPTED, 1, 0, b, acked + 1);
    m.u.accepted.hi = o.proposed_hi; /* decides them all, passing the rotation period */
    px_node_step(n, &m, r);
    collect(r, &o);
    assert_true(o.replies < o.proposed_hi); /* the call ran out of room part way */
    for (uint32_t t = 0; t < 20 && o.takeovers == 0; t++) {
        px_node_tick(n, r);
        collect(r, &o);
    }
    assert_int_equal(o.replies, o.proposed_hi); /* every acknowledged instance decided */
    assert_int_equal(o.takeovers, 1);
    assert_false(px_node_is_leader(n));
    pxu_free(n);
    free(r);
}

/* Node 0 of 3 follows leader 1, which announced `decided` chosen instances. */
static struct px_node *follower_after(px_inst_t decided, struct px_ready *r)
{
    struct px_node *n = pxu_node(0, 3, true);
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(1, 1), 0);
    hb.u.heartbeat.decided_hi = decided;
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    return n;
}

static struct px_msg takeover_from_1(uint64_t handed_back)
{
    struct px_msg m = pxu_msg(PX_MSG_TAKEOVER, 1, 0, px_ballot_make(1, 1), 0);
    m.u.takeover.handed_back = handed_back;
    return m;
}

/* The planned campaign skipped the check a timed-out campaign makes: a successor far behind
 * the chosen log campaigned at once, with the promise streams that cost (see
 * test_proposer_behind_by_more_than_the_campaign_lag_defers_its_campaign). It hands the
 * request back instead, once: the up-to-date former leader campaigns at once. */
static void test_rotation_successor_far_behind_hands_the_takeover_back(void **state)
{
    (void)state;
    struct px_ready *r = pxu_ready();
    struct px_node *n = follower_after(PX_CAMPAIGN_LAG_MAX + 1, r);
    struct px_msg t = takeover_from_1(0);
    px_node_step(n, &t, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
    int k = pxu_find(r, PX_MSG_TAKEOVER, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, 1);
    assert_int_equal(r->msgs[k].u.takeover.handed_back, 1); /* handed back: never returned again */
    px_ready_clear(r);
    t = takeover_from_1(1); /* handed back to a node also behind: it campaigns anyway */
    px_node_step(n, &t, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 1);
    assert_int_equal(pxu_count(r, PX_MSG_TAKEOVER), 0);
    pxu_free(n);
    n = follower_after(PX_CAMPAIGN_LAG_MAX, r); /* close enough: campaigns at once */
    px_ready_clear(r);
    t = takeover_from_1(0);
    px_node_step(n, &t, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 1);
    pxu_free(n);
    free(r);
}

/* Values a former leader still holds after a hand-over (more than one call can forward) go to
 * its successor as the successor's messages arrive. They used to take all the output room of
 * the call stepping the successor's ACCEPT, so the acceptor dropped that ACCEPT "as if lost";
 * with two acceptors (a quorum of both) nothing was decided until the leader resent it
 * PX_RESEND_TICKS later, and a --nodes 2 --window 1024 --rotate 10 run made 900 rounds/s with
 * a commit p50 of 350 ms. Here no tick runs: every value must be decided by messages alone. */
static void test_rotation_values_held_after_a_hand_over_never_crowd_out_an_accept(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(2, NULL, 1024, 10);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    assert_int_equal(pxc_leader(c), 0);
    uint32_t values = 900; /* > 2 x PX_STEP_OUTPUT_MAX: held over several hand-overs */
    for (uint32_t k = 0; k < values; k++) /* 8 clients: each stays inside its dedup span */
        assert_int_equal(pxc_submit(c, 0, 1 + k % 8, 1 + k / 8, pxc_fib_number(k)), 0);
    pxc_run(c, 1000000);
    for (uint16_t i = 0; i < 2; i++) {
        assert_int_equal(px_node_stats(c->node[i].px)->dropped, 0);
        assert_int_equal(pxc_applied_requests(c, i), values);
    }
    assert_true(px_node_stats(c->node[1].px)->elections_won > 0); /* it did rotate */
    pxc_free(c);
}

/* Submits rounds first..last one at a time to whoever leads (as run_rounds), with a few ticks
 * after each: heartbeats carry the learners' acknowledged index (the truncation hint). */
static void run_rounds_from(struct pxc *c, uint32_t first, uint32_t last)
{
    for (uint32_t r = first; r <= last; r++) {
        assert_true(pxc_until(c, pxc_has_leader, NULL, 200));
        int l = pxc_leader(c);
        assert_int_equal(pxc_submit(c, (uint16_t)l, 1, r, pxc_fib_number(r - 1)), 0);
        pxc_run(c, 100000);
        for (uint32_t t = 0; t < 2 * c->cfg.heartbeat_ticks; t++) {
            pxc_tick_all(c);
            pxc_run(c, 100000);
        }
    }
}

/* Seed 201657 of the simulator (BUGS.md S12): proposers that are not learners, rotation every
 * 2 decisions, the only learner restarted from its state machine (its promises report every
 * instance <= applied truncated, hence chosen). A proposer that is no learner knew what is
 * chosen only from the DECIDED flags of its ring: phase 1 skipped the reported-truncated
 * instances but never flagged them, so each later PREPARE again started at the ring's base,
 * and every acceptor that had not truncated streamed its whole log back. The work of each
 * campaign grew with the log; with 8-slot rings phase 1 outlasted its timeout, campaign after
 * campaign. It starts phase 1 past what it knows is chosen. */
static void
test_rotation_proposers_that_are_not_learners_do_not_restream_the_chosen_log(void **state)
{
    (void)state;
    uint64_t roles[4] = {PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR,
                         PX_ROLE_PROPOSER, PX_ROLE_ACCEPTOR};
    const uint32_t before = 20, rounds = 60, rotate = 2;
    struct pxc *c = pxc_new(4, roles, 1, rotate);
    pxc_campaign(c, 1);
    pxc_run(c, 100000);
    run_rounds_from(c, 1, before);
    pxc_crash(c, 0); /* the learner restarts from its state machine: base = applied + 1 */
    pxc_start_node(c, 0);
    pxc_crash(c, 2); /* the proposer that is only a proposer restarts with an empty ring */
    pxc_start_node(c, 2);
    uint64_t entries0 = c->sent_by_type[PX_MSG_PROMISE_ENTRY];
    uint64_t campaigns0 = px_node_stats(c->node[2].px)->campaigns;
    run_rounds_from(c, before + 1, rounds);
    assert_int_equal(pxc_applied_requests(c, 0), rounds);
    uint64_t campaigns = px_node_stats(c->node[2].px)->campaigns - campaigns0;
    uint64_t entries = c->sent_by_type[PX_MSG_PROMISE_ENTRY] - entries0;
    assert_true(campaigns >= (rounds - before) / rotate / 2 - 1); /* it did rotate */
    /* Nodes 1 and 2 take turns: about 2 x campaigns phase 1s, each of which may report from
     * each of the three acceptors the one instance (window 1) the last leader left in flight,
     * never the chosen log: before, each of node 2's campaigns streamed everything from
     * instance 1 from nodes 1 and 3 (1,000 entries here, growing with the log). */
    assert_true(entries <= 3 * 2 * campaigns);
    pxc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_hands_leadership_to_next_proposer_every_k_decisions),
        cmocka_unit_test(test_rotation_skips_a_dead_proposer),
        cmocka_unit_test(test_rotation_skips_nodes_that_are_not_proposers),
        cmocka_unit_test(test_rotation_without_another_proposer_keeps_leading),
        cmocka_unit_test(
            test_rotation_leader_keeps_deciding_a_long_accepted_range_while_handing_over),
        cmocka_unit_test(test_rotation_successor_far_behind_hands_the_takeover_back),
        cmocka_unit_test(test_rotation_values_held_after_a_hand_over_never_crowd_out_an_accept),
        cmocka_unit_test(
            test_rotation_proposers_that_are_not_learners_do_not_restream_the_chosen_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
