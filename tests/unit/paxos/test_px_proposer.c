/* test_px_proposer.c: proposer and leader (Multi-Paxos, "Paxos Made Simple" 2.2 and 3). Node 0
 * of 3 proposes; its peers' replies are hand-made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

/* Ticks until n sends PREPARE; returns its ballot (the ready is cleared). */
static px_ballot_t tick_until_prepare(struct px_node *n, struct px_ready *r, uint32_t *ticks)
{
    for (uint32_t t = 1; t < 1000; t++) {
        px_node_tick(n, r);
        int k = pxu_find(r, PX_MSG_PREPARE, 0);
        if (k >= 0) {
            px_ballot_t b = r->msgs[k].ballot;
            assert_int_equal(r->msgs[k].to, PX_TO_ALL);
            if (ticks != NULL)
                *ticks = t;
            px_ready_clear(r);
            return b;
        }
        px_ready_clear(r);
    }
    fail();
    return 0;
}

static void promise(struct px_node *n, struct px_ready *r, uint16_t from, px_ballot_t b,
                    uint64_t count)
{
    struct px_msg p = pxu_msg(PX_MSG_PROMISE, from, 0, b, 1);
    p.u.promise.entries = count;
    px_node_step(n, &p, r);
}

static void promise_entry(struct px_node *n, struct px_ready *r, uint16_t from, px_ballot_t b,
                          px_inst_t i, px_ballot_t accepted_at, uint64_t inc, uint64_t seq)
{
    struct px_msg e = pxu_msg(PX_MSG_PROMISE_ENTRY, from, 0, b, i);
    e.u.promise_entry.accepted_ballot = accepted_at;
    e.u.promise_entry.seq = seq;
    e.u.promise_entry.value = (struct px_value){.word = inc, .client_id = 5, .seq = (uint32_t)inc};
    px_node_step(n, &e, r);
}

static void accepted(struct px_node *n, struct px_ready *r, uint16_t from, px_ballot_t b,
                     px_inst_t lo, px_inst_t hi)
{
    struct px_msg m = pxu_msg(PX_MSG_ACCEPTED, from, 0, b, lo);
    m.u.accepted.hi = hi;
    px_node_step(n, &m, r);
}

static px_ballot_t become_leader(struct px_node *n, struct px_ready *r)
{
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise(n, r, 1, b, 0);
    assert_true(px_node_is_leader(n));
    px_ready_clear(r);
    return b;
}

static int submit(struct px_node *n, struct px_ready *r, uint32_t seq)
{
    struct px_value v = {.word = seq, .client_id = 9, .seq = seq};
    return px_node_submit(n, &v, r);
}

static void test_proposer_campaigns_after_election_timeout_with_prepare_to_all(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    uint32_t ticks = 0;
    px_ballot_t b = tick_until_prepare(n, r, &ticks);
    /* rank 0, first election: election_ticks plus at most election_ticks / 4 of jitter */
    assert_true(ticks >= 10 && ticks <= 13);
    assert_int_equal(px_ballot_node(b), 0);
    assert_int_equal(px_ballot_counter(b), 1);
    assert_int_equal(px_node_stats(n)->campaigns, 1);
    pxu_free(n);
    free(r);
}

static void test_proposer_lower_ranked_proposers_wait_longer(void **state)
{
    (void)state;
    uint32_t t0 = 0, t2 = 0;
    struct px_ready *r = pxu_ready();
    struct px_node *a = pxu_node(0, 3, false);
    struct px_node *c = pxu_node(2, 3, false);
    tick_until_prepare(a, r, &t0);
    tick_until_prepare(c, r, &t2);
    assert_true(t2 >= t0 + 10 - 2); /* two ranks later, minus the jitter */
    assert_true(t2 >= 30);
    pxu_free(a);
    pxu_free(c);
    free(r);
}

static void test_proposer_becomes_leader_on_majority_of_promises_and_heartbeats(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    assert_false(px_node_is_leader(n));
    promise(n, r, 1, b, 0);
    assert_true(px_node_is_leader(n)); /* itself + node 1 = 2 of 3 */
    assert_int_equal(px_node_leader(n), 0);
    int k = pxu_find(r, PX_MSG_HEARTBEAT, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].ballot, b);
    pxu_free(n);
    free(r);
}

static void test_proposer_adopts_highest_ballot_value_from_promises_p2c(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 5, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise_entry(n, r, 1, b, 1, px_ballot_make(0, 3), 111, 1); /* older ballot */
    promise(n, r, 1, b, 1);
    promise_entry(n, r, 2, b, 1, px_ballot_make(0, 4), 222, 1); /* highest: must win */
    promise(n, r, 2, b, 1);
    assert_true(px_node_is_leader(n));
    int k = pxu_find(r, PX_MSG_ACCEPT, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].instance, 1);
    assert_int_equal(r->msgs[k].ballot, b);
    assert_int_equal(r->msgs[k].u.accept.value.word, 222);
    pxu_free(n);
    free(r);
}

static void test_proposer_fills_gaps_below_highest_report_with_noops(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise_entry(n, r, 1, b, 3, px_ballot_make(0, 2), 33, 1);
    promise(n, r, 1, b, 1);
    assert_true(px_node_is_leader(n));
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 3);
    int k = pxu_find(r, PX_MSG_ACCEPT, 0);
    assert_int_equal(r->msgs[k].instance, 1);
    assert_int_equal(r->msgs[k].u.accept.value.client_id, 0); /* no-op */
    k = pxu_find(r, PX_MSG_ACCEPT, (uint32_t)k + 1);
    assert_int_equal(r->msgs[k].instance, 2);
    assert_int_equal(r->msgs[k].u.accept.value.client_id, 0);
    k = pxu_find(r, PX_MSG_ACCEPT, (uint32_t)k + 1);
    assert_int_equal(r->msgs[k].instance, 3);
    assert_int_equal(r->msgs[k].u.accept.value.word, 33);
    pxu_free(n);
    free(r);
}

static void test_proposer_ignores_promise_with_a_lost_entry(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise_entry(n, r, 1, b, 1, px_ballot_make(0, 2), 1, 1);
    /* entry 2 of 3 lost */
    promise_entry(n, r, 1, b, 3, px_ballot_make(0, 2), 3, 3);
    promise(n, r, 1, b, 3);
    assert_false(px_node_is_leader(n));
    pxu_free(n);
    free(r);
}

static void test_proposer_ignores_promise_with_a_duplicated_entry(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise_entry(n, r, 1, b, 1, px_ballot_make(0, 2), 1, 1);
    promise_entry(n, r, 1, b, 2, px_ballot_make(0, 2), 2, 2);
    promise_entry(n, r, 1, b, 2, px_ballot_make(0, 2), 2, 2);
    promise(n, r, 1, b, 2);
    assert_false(px_node_is_leader(n));
    pxu_free(n);
    free(r);
}

static void test_proposer_steps_down_on_nack_with_higher_ballot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = become_leader(n, r);
    struct px_msg nack = pxu_msg(PX_MSG_NACK, 1, 0, px_ballot_make(9, 2), 0);
    nack.u.nack.rejected_ballot = b;
    px_node_step(n, &nack, r);
    assert_false(px_node_is_leader(n));
    px_ready_clear(r);
    /* its next ballot is above everything it has seen */
    px_ballot_t b2 = tick_until_prepare(n, r, NULL);
    assert_true(b2 > px_ballot_make(9, 2));
    pxu_free(n);
    free(r);
}

static void test_proposer_steps_down_on_accept_of_higher_ballot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    become_leader(n, r);
    struct px_msg a = pxu_msg(PX_MSG_ACCEPT, 2, PX_TO_ALL, px_ballot_make(5, 2), 1);
    px_node_step(n, &a, r);
    assert_false(px_node_is_leader(n));
    assert_int_equal(px_node_leader(n), 2);
    pxu_free(n);
    free(r);
}

static void test_proposer_decides_on_majority_accepted_and_replies_to_client(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = become_leader(n, r);
    assert_int_equal(submit(n, r, 1), 0);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 1);
    assert_int_equal(r->recs_len, 1); /* its own acceptance */
    assert_int_equal(r->recs[0].type, PX_REC_ACCEPTED);
    px_ready_clear(r);
    accepted(n, r, 2, b, 1, 1);
    int k = pxu_find(r, PX_MSG_CLIENT_REPLY, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, 3); /* PX_CLIENT_NODE: endpoint N */
    assert_int_equal(r->msgs[k].u.client_reply.value.client_id, 9);
    assert_int_equal(r->msgs[k].u.client_reply.value.seq, 1);
    assert_int_equal(r->msgs[k].instance, 1);
    k = pxu_find(r, PX_MSG_DECIDE, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].u.decide.hi, 1);
    assert_int_equal(r->apply_len, 1); /* the leader is a learner too */
    assert_int_equal(px_node_stats(n)->decided, 1);
    pxu_free(n);
    free(r);
}

static void test_proposer_accepted_is_counted_once_per_acceptor(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 5, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    promise(n, r, 1, b, 0);
    promise(n, r, 2, b, 0);
    assert_true(px_node_is_leader(n));
    submit(n, r, 1);
    px_ready_clear(r);
    accepted(n, r, 1, b, 1, 1);
    accepted(n, r, 1, b, 1, 1); /* duplicate: still 2 of 5 */
    assert_int_equal(px_node_stats(n)->decided, 0);
    accepted(n, r, 2, b, 1, 1);
    assert_int_equal(px_node_stats(n)->decided, 1);
    pxu_free(n);
    free(r);
}

static void test_proposer_window_limits_in_flight_and_grows_per_decision(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false); /* window_max 8, initial cwnd 8 */
    struct px_ready *r = pxu_ready();
    px_ballot_t b = become_leader(n, r);
    for (uint32_t s = 1; s <= 20; s++)
        assert_int_equal(submit(n, r, s), 0);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 8); /* the rest waits in the queue */
    px_ready_clear(r);
    accepted(n, r, 1, b, 1, 3);
    /* 3 decided: 3 slots free */
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 3);
    int k = pxu_find(r, PX_MSG_ACCEPT, 0);
    assert_int_equal(r->msgs[k].instance, 9);
    assert_int_equal(r->msgs[k].u.accept.decided_hi, 3); /* the decision rides on the ACCEPT */
    pxu_free(n);
    free(r);
}

static void test_proposer_congested_halves_window_aimd(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = become_leader(n, r);
    px_node_congested(n); /* 8 -> 4 */
    for (uint32_t s = 1; s <= 20; s++)
        submit(n, r, s);
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 4);
    px_ready_clear(r);
    accepted(n, r, 1, b, 1, 4); /* 4 decided: window 4 -> 8 (additive +1 each) */
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 8);
    px_ready_clear(r);
    px_node_congested(n);
    px_node_congested(n);
    px_node_congested(n);
    px_node_congested(n);       /* 8 -> 4 -> 2 -> 1 -> floor 1 */
    accepted(n, r, 1, b, 5, 5); /* cwnd 2, still 7 in flight: nothing new */
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 0);
    accepted(n, r, 1, b, 6, 11); /* cwnd 8, 1 in flight: 7 new */
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 7);
    pxu_free(n);
    free(r);
}

static void test_proposer_resends_accepts_when_commit_stalls(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    become_leader(n, r);
    submit(n, r, 1);
    submit(n, r, 2);
    px_ready_clear(r);
    uint32_t resent = 0;
    for (uint32_t t = 0; t < 8; t++) {
        px_node_tick(n, r);
        resent += pxu_count(r, PX_MSG_ACCEPT);
        px_ready_clear(r);
    }
    assert_int_equal(resent, 2);
    assert_int_equal(px_node_stats(n)->resent, 2);
    pxu_free(n);
    free(r);
}

/* The failure detector is exact: the first live proposer by id campaigns in the very call that
 * reports the leader dead, with no timer and no jitter (the fail-over fast path). */
static void test_proposer_campaigns_at_once_when_leader_reported_down_and_rank_zero(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 0, PX_TO_ALL, px_ballot_make(1, 0), 0);
    px_node_step(n, &hb, r);
    assert_int_equal(px_node_leader(n), 0);
    px_ready_clear(r);
    px_node_peer_status(n, 0, false, r);
    int k = pxu_find(r, PX_MSG_PREPARE, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, PX_TO_ALL);
    assert_true(r->msgs[k].ballot > px_ballot_make(1, 0));
    assert_int_equal(px_ballot_node(r->msgs[k].ballot), 1);
    assert_int_equal(px_node_stats(n)->campaigns, 1);
    pxu_free(n);
    free(r);
}

/* A leader killed right after it won, before its first message reached this node: the node
 * promised its PREPARE but knows no leader, so the death looked like a follower's and nobody
 * campaigned until an election timer fired (300 ms stalls, seen with --failover-every). The
 * proposer of the highest ballot seen may lead: its death starts the campaign at once. */
static void test_proposer_campaigns_at_once_when_the_proposer_it_promised_dies_unheard(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg p = pxu_msg(PX_MSG_PREPARE, 0, PX_TO_ALL, px_ballot_make(1, 0), 1);
    px_node_step(n, &p, r);
    assert_int_equal(px_node_leader(n), PX_NODE_NONE);
    px_ready_clear(r);
    px_node_peer_status(n, 0, false, r);
    int k = pxu_find(r, PX_MSG_PREPARE, 0);
    assert_true(k >= 0);
    assert_true(r->msgs[k].ballot > px_ballot_make(1, 0));
    assert_int_equal(px_ballot_node(r->msgs[k].ballot), 1);
    assert_int_equal(px_node_stats(n)->campaigns, 1);
    pxu_free(n);
    free(r);
}

/* A node that has seen no ballot at all (the pool is starting) does not take a death for a
 * leader's: its election timer elects as before. */
static void test_proposer_fresh_node_does_not_campaign_on_a_death(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    px_node_peer_status(n, 0, false, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
    assert_int_equal(px_node_stats(n)->campaigns, 0);
    pxu_free(n);
    free(r);
}

/* The death of a follower changes nothing while the leader this node knows is alive. */
static void test_proposer_follower_death_starts_no_campaign_while_a_leader_is_known(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 2, PX_TO_ALL, px_ballot_make(1, 2), 0);
    px_node_step(n, &hb, r);
    assert_int_equal(px_node_leader(n), 2);
    px_ready_clear(r);
    px_node_peer_status(n, 0, false, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
    assert_int_equal(px_node_leader(n), 2);
    assert_int_equal(px_node_stats(n)->campaigns, 0);
    pxu_free(n);
    free(r);
}

/* The first live proposer is far behind when the leader dies: it does not campaign (its
 * phase 1 would be long) but asks the next live proposer to campaign now, handed back
 * so that one campaigns even if it is behind too; before, the pool waited that proposer's
 * election timeout. */
static void
test_proposer_far_behind_asks_the_next_proposer_to_campaign_when_the_leader_dies(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, true);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(1, 1), 0);
    hb.u.heartbeat.decided_hi = PX_CAMPAIGN_LAG_MAX + 1;
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    px_node_peer_status(n, 1, false, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
    int k = pxu_find(r, PX_MSG_TAKEOVER, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, 2);
    assert_int_equal(r->msgs[k].u.takeover.handed_back, 1);
    pxu_free(n);
    free(r);
}

/* Only the rank-next proposer jumps: the one behind it keeps the seeded back-off (a timer of
 * at least one election timeout), so two live proposers do not duel on every leader death. */
static void
test_proposer_second_in_rank_waits_an_election_timeout_when_leader_reported_down(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(2, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 0, PX_TO_ALL, px_ballot_make(1, 0), 0);
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    px_node_peer_status(n, 0, false, r);
    assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
    assert_int_equal(px_node_leader(n), PX_NODE_NONE);
    uint32_t ticks = 0;
    tick_until_prepare(n, r, &ticks);
    struct px_config cfg = pxu_config(2, 3);
    assert_true(ticks >= cfg.election_ticks); /* node 1 is live and ranks first */
    pxu_free(n);
    free(r);
}

/* A new leader re-proposes every instance its phase 1 reported in one go, not a slow-start
 * congestion window of them: the old leader's whole window is decided in one round trip. */
static void test_proposer_new_leader_reproposes_the_whole_reported_window_at_once(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    cfg.window_max = 64;
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    for (uint32_t i = 1; i <= 20; i++)
        promise_entry(n, r, 1, b, i, px_ballot_make(0, 2), i, i);
    promise(n, r, 1, b, 20);
    assert_true(px_node_is_leader(n));
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 20);
    px_ready_clear(r);
    /* the cap still holds: window_max bounds what is re-proposed at once */
    cfg.window_max = 8;
    struct px_node *m = pxu_node_cfg(&cfg);
    b = tick_until_prepare(m, r, NULL);
    for (uint32_t i = 1; i <= 20; i++)
        promise_entry(m, r, 1, b, i, px_ballot_make(0, 2), i, i);
    promise(m, r, 1, b, 20);
    assert_true(px_node_is_leader(m));
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 8);
    pxu_free(n);
    pxu_free(m);
    free(r);
}

static void test_proposer_queues_when_no_leader_and_reports_full_queue(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    for (uint32_t s = 0; s < PX_QUEUE_MAX; s++)
        assert_int_equal(submit(n, r, s), 0);
    assert_int_equal(r->msgs_len, 0);
    assert_int_equal(submit(n, r, PX_QUEUE_MAX), -EAGAIN);
    /* a leader appears: queued values are forwarded (bounded per call) */
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 2, PX_TO_ALL, px_ballot_make(1, 2), 0);
    px_node_step(n, &hb, r);
    assert_true(pxu_count(r, PX_MSG_CLIENT) > 0);
    assert_true(r->msgs_len <= PX_STEP_OUTPUT_MAX);
    int k = pxu_find(r, PX_MSG_CLIENT, 0);
    assert_int_equal(r->msgs[k].to, 2);
    assert_int_equal(r->msgs[k].u.client.value.seq, 0);
    pxu_free(n);
    free(r);
}

static void test_proposer_losing_proposer_role_steps_down_and_stops_campaigning(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    become_leader(n, r);
    px_node_set_roles(n, 0, PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, r);
    assert_false(px_node_is_leader(n));
    px_ready_clear(r);
    for (uint32_t t = 0; t < 200; t++) {
        px_node_tick(n, r);
        assert_int_equal(pxu_count(r, PX_MSG_PREPARE), 0);
        px_ready_clear(r);
    }
    px_node_set_roles(n, 0, PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, r);
    tick_until_prepare(n, r, NULL); /* a proposer again */
    pxu_free(n);
    free(r);
}

static void test_proposer_quorum_follows_acceptor_set_changes(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    /* nodes 1 and 2 stop being acceptors (between rounds, on every node): quorum 1 of 1 */
    px_node_set_roles(n, 1, PX_ROLE_LEARNER, r);
    px_node_set_roles(n, 2, PX_ROLE_LEARNER, r);
    tick_until_prepare(n, r, NULL);
    assert_true(px_node_is_leader(n)); /* its own promise is a majority of one */
    submit(n, r, 1);
    assert_int_equal(px_node_stats(n)->decided, 1);
    pxu_free(n);
    free(r);
}

static void test_proposer_that_is_no_acceptor_persists_its_ballot_before_prepare(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    cfg.roles[0] = PX_ROLE_PROPOSER;
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = 0;
    for (uint32_t t = 0; t < 100 && b == 0; t++) {
        px_node_tick(n, r);
        int k = pxu_find(r, PX_MSG_PREPARE, 0);
        if (k >= 0) {
            b = r->msgs[k].ballot;
            assert_int_equal(r->recs_len, 1); /* durable before the PREPARE is sent */
            assert_int_equal(r->recs[0].type, PX_REC_PROMISE);
            assert_int_equal(r->recs[0].ballot, b);
        }
        px_ready_clear(r);
    }
    assert_true(b != 0);
    /* restart from that record: the next ballot is higher (ballots are never reused) */
    struct px_rec rec = {.type = PX_REC_PROMISE, .ballot = b};
    pxu_free(n);
    n = pxu_node_cfg(&cfg);
    px_node_load_rec(n, &rec);
    px_ballot_t b2 = tick_until_prepare(n, r, NULL);
    assert_true(b2 > b);
    pxu_free(n);
    free(r);
}

static void
test_proposer_leader_answers_an_already_applied_resubmission_without_a_slot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(0, 3, false);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = become_leader(n, r);
    submit(n, r, 1);
    accepted(n, r, 1, b, 1, 1); /* decided and applied at instance 1 */
    px_ready_clear(r);
    submit(n, r, 1); /* the client timed out and resent it */
    assert_int_equal(pxu_count(r, PX_MSG_ACCEPT), 0);
    int k = pxu_find(r, PX_MSG_CLIENT_REPLY, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].u.client_reply.value.seq, 1);
    assert_int_equal(r->msgs[k].instance, 0); /* "applied earlier" */
    pxu_free(n);
    free(r);
}

/* Hears leader 1 announce `decided` chosen instances, loses it, and counts the ticks until it
 * campaigns. */
static uint32_t ticks_to_campaign_after(px_inst_t decided)
{
    struct px_node *n = pxu_node(0, 3, true);
    struct px_ready *r = pxu_ready();
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(1, 1), 0);
    hb.u.heartbeat.decided_hi = decided;
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    px_node_peer_status(n, 1, false, r);
    uint32_t ticks = 0;
    if (pxu_find(r, PX_MSG_PREPARE, 0) < 0) { /* else it campaigned in that very call */
        px_ready_clear(r);
        tick_until_prepare(n, r, &ticks);
    }
    pxu_free(n);
    free(r);
    return ticks;
}

/* A restarted proposer far behind what is chosen would win phase 1 with a log ring that cannot
 * reach the first instance it may propose, and stall the pool (seen in chaos runs): it gives
 * the others PX_CAMPAIGN_DEFER_TIMEOUTS election timeouts first, then still campaigns. */
static void test_proposer_far_behind_the_chosen_log_defers_its_campaign(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    uint32_t up_to_date = ticks_to_campaign_after(0);
    uint32_t behind = ticks_to_campaign_after(10 * PX_LOG_MAX);
    assert_true(behind >= up_to_date + (PX_CAMPAIGN_DEFER_TIMEOUTS - 1) * cfg.election_ticks);
}

/* Seed 913282 of the simulator: a restarted proposer 1,830 instances behind (under the old
 * PX_LOG_MAX / 2 threshold) campaigned; its promise streams (1,830 entries from each of five
 * acceptors) took ten times its phase-1 timeout to step and buried the leader's heartbeats,
 * so it timed out, campaigned again over the leader, and the pool never converged. More than
 * PX_CAMPAIGN_LAG_MAX (one catch-up batch) behind, a proposer catches up before it campaigns. */
static void test_proposer_behind_by_more_than_the_campaign_lag_defers_its_campaign(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    uint32_t up_to_date = ticks_to_campaign_after(0);
    assert_int_equal(ticks_to_campaign_after(PX_CAMPAIGN_LAG_MAX), up_to_date);
    uint32_t behind = ticks_to_campaign_after(PX_CAMPAIGN_LAG_MAX + 1);
    assert_true(behind >= up_to_date + (PX_CAMPAIGN_DEFER_TIMEOUTS - 1) * cfg.election_ticks);
    assert_int_equal(ticks_to_campaign_after(1830), behind);
}

/* Seed 201657 of the simulator (BUGS.md S12): a proposer that is no learner knew what is
 * chosen only from the DECIDED flags of its ring, so its PREPARE asked from the first instance
 * its ring did not flag, and every acceptor streamed every entry back again, campaign after
 * campaign. It applies nothing: it starts past what it knows is chosen and some learner holds
 * (the leader's truncation hint), but not past what no learner may hold -- flags are not
 * durable on such nodes, and proposing those instances again is how learners learn them once
 * their holders restarted (starting past all it knew chosen stalled learners for good in one
 * seed in 2,500). A learner still asks from its applied index + 1: it needs the values. */
static void test_proposer_that_is_no_learner_prepares_past_what_a_learner_holds(void **state)
{
    (void)state;
    const px_inst_t chosen = 40, held = 30; /* the hint stays below a truncation step */
    for (int learner = 0; learner <= 1; learner++) {
        for (int hint = 0; hint <= 1; hint++) {
            struct px_config cfg = pxu_config(0, 3);
            cfg.roles[0] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | (learner ? PX_ROLE_LEARNER : 0);
            struct px_node *n = pxu_node_cfg(&cfg);
            struct px_ready *r = pxu_ready();
            struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(1, 1), 0);
            hb.u.heartbeat.decided_hi = chosen; /* node 0 holds none of these values */
            hb.u.heartbeat.truncate_hint = hint ? held : 0;
            px_node_step(n, &hb, r);
            px_ready_clear(r);
            px_node_peer_status(n, 1, false, r); /* the leader dies: node 0 ranks first */
            int k = pxu_find(r, PX_MSG_PREPARE, 0);
            assert_true(k >= 0);
            assert_int_equal(r->msgs[k].instance, learner || !hint ? 1 : held + 1);
            pxu_free(n);
            free(r);
        }
    }
}

/* Seeds 201657, 409862, 466399 (BUGS.md S12): a node that is no learner queued every copy of
 * a request (resubmissions, network duplicates), forwarded them all on every hand-over and
 * proposed each into an instance of its own; one request was forwarded 23,593 times. It keeps
 * one copy per request. */
static void test_proposer_that_is_no_learner_queues_one_copy_per_request(void **state)
{
    (void)state;
    for (int learner = 0; learner <= 1; learner++) {
        struct px_config cfg = pxu_config(0, 3);
        cfg.roles[0] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | (learner ? PX_ROLE_LEARNER : 0);
        struct px_node *n = pxu_node_cfg(&cfg);
        struct px_ready *r = pxu_ready();
        for (uint32_t copy = 0; copy < 3; copy++) /* no leader known: queued */
            for (uint32_t seq = 1; seq <= 2; seq++)
                assert_int_equal(submit(n, r, seq), 0);
        assert_int_equal(pxu_count(r, PX_MSG_CLIENT), 0);
        struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(1, 1), 0);
        px_node_step(n, &hb, r); /* a leader: the queue goes to it */
        assert_int_equal(pxu_count(r, PX_MSG_CLIENT), learner ? 6 : 2);
        pxu_free(n);
        free(r);
    }
}

/* Simulator seeds 314601, 347055, 360724: a candidate's ring base moved past its phase-1 start
 * while its promises arrived (a snapshot installed from a catch-up reply; here the truncation
 * hint of the deposed leader's heartbeat), and winning asserted base <= commit + 1. Everything
 * below the base is chosen: phase 2 starts at the base. */
static void
test_proposer_candidate_whose_base_moves_during_phase_1_leads_from_the_base(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(0, 3);
    cfg.roles[0] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR; /* truncates on the hint alone */
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    px_ballot_t b = tick_until_prepare(n, r, NULL);
    const px_inst_t chosen = 2 * 64; /* past one truncation step (PX_TRUNCATE_STEP) */
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 1, 0, px_ballot_make(0, 1), 0);
    hb.u.heartbeat.decided_hi = chosen;
    hb.u.heartbeat.truncate_hint = chosen;
    px_node_step(n, &hb, r);
    px_ready_clear(r);
    promise(n, r, 1, b, 0);
    assert_true(px_node_is_leader(n));
    struct px_value v = {.word = 1, .client_id = 9, .seq = 1};
    assert_int_equal(px_node_submit(n, &v, r), 0);
    int k = pxu_find(r, PX_MSG_ACCEPT, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].instance, chosen + 1); /* nothing at or below the base */
    pxu_free(n);
    free(r);
}

/* An acceptor's promise longer than one call's output bound continues on later calls: the
 * node reports pending work until the stream is out, so its loop does not sleep a tick
 * between the parts (that sleep once cost a fail-over a tick per PX_STEP_OUTPUT_MAX entries). */
static void test_node_reports_pending_work_while_a_long_promise_streams(void **state)
{
    (void)state;
    struct px_config cfg = pxu_config(1, 3);
    cfg.window_max = PX_WINDOW_MAX;
    struct px_node *n = pxu_node_cfg(&cfg);
    struct px_ready *r = pxu_ready();
    const uint32_t entries = 3 * PX_STEP_OUTPUT_MAX;
    for (uint32_t i = 1; i <= entries; i++) {
        struct px_msg acc = pxu_msg(PX_MSG_ACCEPT, 0, PX_TO_ALL, px_ballot_make(1, 0), i);
        acc.u.accept.value = (struct px_value){.word = i, .client_id = 3, .seq = i};
        px_node_step(n, &acc, r);
        px_node_flush(n, r);
        px_ready_clear(r);
    }
    assert_false(px_node_pending(n));
    struct px_msg prep = pxu_msg(PX_MSG_PREPARE, 2, PX_TO_ALL, px_ballot_make(2, 2), 1);
    px_node_step(n, &prep, r);
    assert_true(px_node_pending(n)); /* the output bound cut the promise short */
    uint32_t calls = 0;
    while (px_node_pending(n) && calls < 10) {
        px_ready_clear(r);
        px_node_flush(n, r);
        calls++;
    }
    assert_false(px_node_pending(n));
    assert_int_equal(pxu_count(r, PX_MSG_PROMISE), 1); /* the stream ended with its PROMISE */
    assert_true(calls >= 2);
    pxu_free(n);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proposer_campaigns_after_election_timeout_with_prepare_to_all),
        cmocka_unit_test(test_proposer_lower_ranked_proposers_wait_longer),
        cmocka_unit_test(test_proposer_becomes_leader_on_majority_of_promises_and_heartbeats),
        cmocka_unit_test(test_proposer_adopts_highest_ballot_value_from_promises_p2c),
        cmocka_unit_test(test_proposer_fills_gaps_below_highest_report_with_noops),
        cmocka_unit_test(test_proposer_ignores_promise_with_a_lost_entry),
        cmocka_unit_test(test_proposer_ignores_promise_with_a_duplicated_entry),
        cmocka_unit_test(test_proposer_steps_down_on_nack_with_higher_ballot),
        cmocka_unit_test(test_proposer_steps_down_on_accept_of_higher_ballot),
        cmocka_unit_test(test_proposer_decides_on_majority_accepted_and_replies_to_client),
        cmocka_unit_test(test_proposer_accepted_is_counted_once_per_acceptor),
        cmocka_unit_test(test_proposer_window_limits_in_flight_and_grows_per_decision),
        cmocka_unit_test(test_proposer_congested_halves_window_aimd),
        cmocka_unit_test(test_proposer_resends_accepts_when_commit_stalls),
        cmocka_unit_test(test_proposer_campaigns_at_once_when_leader_reported_down_and_rank_zero),
        cmocka_unit_test(
            test_proposer_second_in_rank_waits_an_election_timeout_when_leader_reported_down),
        cmocka_unit_test(test_proposer_new_leader_reproposes_the_whole_reported_window_at_once),
        cmocka_unit_test(test_node_reports_pending_work_while_a_long_promise_streams),
        cmocka_unit_test(test_proposer_queues_when_no_leader_and_reports_full_queue),
        cmocka_unit_test(test_proposer_losing_proposer_role_steps_down_and_stops_campaigning),
        cmocka_unit_test(test_proposer_quorum_follows_acceptor_set_changes),
        cmocka_unit_test(test_proposer_that_is_no_acceptor_persists_its_ballot_before_prepare),
        cmocka_unit_test(test_proposer_far_behind_the_chosen_log_defers_its_campaign),
        cmocka_unit_test(
            test_proposer_campaigns_at_once_when_the_proposer_it_promised_dies_unheard),
        cmocka_unit_test(test_proposer_fresh_node_does_not_campaign_on_a_death),
        cmocka_unit_test(test_proposer_follower_death_starts_no_campaign_while_a_leader_is_known),
        cmocka_unit_test(
            test_proposer_far_behind_asks_the_next_proposer_to_campaign_when_the_leader_dies),
        cmocka_unit_test(test_proposer_behind_by_more_than_the_campaign_lag_defers_its_campaign),
        cmocka_unit_test(test_proposer_that_is_no_learner_prepares_past_what_a_learner_holds),
        cmocka_unit_test(test_proposer_that_is_no_learner_queues_one_copy_per_request),
        cmocka_unit_test(
            test_proposer_candidate_whose_base_moves_during_phase_1_leads_from_the_base),
        cmocka_unit_test(
            test_proposer_leader_answers_an_already_applied_resubmission_without_a_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
