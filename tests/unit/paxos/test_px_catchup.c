/* test_px_catchup.c: a learner with a gap asks a peer from its applied index; the peer answers
 * with a bounded batch of decided entries, or a snapshot where it truncated them. Also the log
 * bound: truncation behind every live learner's ACK, and backpressure when the ring is full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "px_cluster.h"

#define B px_ballot_make(1, 0)

static void accept_in(struct px_node *n, struct px_ready *r, px_inst_t i, uint64_t inc,
                      px_inst_t decided)
{
    struct px_msg m = pxu_msg(PX_MSG_ACCEPT, 0, PX_TO_ALL, B, i);
    m.u.accept.value = (struct px_value){.word = inc, .client_id = 1, .seq = (uint32_t)i};
    m.u.accept.decided_hi = decided;
    px_node_step(n, &m, r);
}

static void test_catchup_learner_with_gap_asks_leader_from_applied_plus_one(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    accept_in(n, r, 1, 1, 0);
    accept_in(n, r, 3, 3, 0); /* 2 lost */
    px_ready_clear(r);
    struct px_msg d = pxu_msg(PX_MSG_DECIDE, 0, PX_TO_ALL, B, 0);
    d.u.decide.hi = 3;
    px_node_step(n, &d, r);
    assert_int_equal(r->apply_len, 1);
    int k = pxu_find(r, PX_MSG_CATCHUP_REQ, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].to, 0);
    assert_int_equal(r->msgs[k].instance, 2);
    assert_int_equal(px_node_stats(n)->catchup_reqs, 1);
    /* no second request while one is outstanding */
    px_ready_clear(r);
    px_node_step(n, &d, r);
    assert_int_equal(pxu_count(r, PX_MSG_CATCHUP_REQ), 0);
    pxu_free(n);
    free(r);
}

static void test_catchup_peer_serves_bounded_batch_marked_last(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    for (px_inst_t i = 1; i <= 100; i++) {
        accept_in(n, r, i, i, i - 1);
        px_ready_clear(r);
    }
    struct px_msg d = pxu_msg(PX_MSG_DECIDE, 0, PX_TO_ALL, B, 0);
    d.u.decide.hi = 100;
    px_node_step(n, &d, r);
    px_ready_clear(r);
    struct px_msg q = pxu_msg(PX_MSG_CATCHUP_REQ, 2, 1, 0, 10);
    px_node_step(n, &q, r);
    assert_int_equal(r->msgs_len, PX_CATCHUP_BATCH_MAX);
    for (uint32_t k = 0; k < r->msgs_len; k++) {
        assert_int_equal(r->msgs[k].type, PX_MSG_CATCHUP_ENTRY);
        assert_int_equal(r->msgs[k].to, 2);
        assert_int_equal(r->msgs[k].instance, 10 + k);
        assert_int_equal(r->msgs[k].u.catchup_entry.value.word, 10 + k);
        assert_int_equal(r->msgs[k].flags & PX_FLAG_LAST, k + 1 == r->msgs_len ? PX_FLAG_LAST : 0);
    }
    pxu_free(n);
    free(r);
}

static void test_catchup_entries_fill_gap_and_learner_asks_for_next_batch(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg d = pxu_msg(PX_MSG_DECIDE, 0, PX_TO_ALL, B, 0);
    d.u.decide.hi = 5;
    px_node_step(n, &d, r);
    px_ready_clear(r);
    for (px_inst_t i = 1; i <= 3; i++) {
        struct px_msg e = pxu_msg(PX_MSG_CATCHUP_ENTRY, 0, 1, 0, i);
        e.u.catchup_entry.value = (struct px_value){.word = i, .client_id = 1, .seq = (uint32_t)i};
        e.flags = i == 3 ? PX_FLAG_LAST : 0;
        px_node_step(n, &e, r);
    }
    assert_int_equal(r->apply_len, 3);
    assert_int_equal(px_node_history(n)->applied, 3);
    int k = pxu_find(r, PX_MSG_CATCHUP_REQ, 0);
    assert_true(k >= 0); /* still behind 5: asks for the next batch at once */
    assert_int_equal(r->msgs[k].instance, 4);
    pxu_free(n);
    free(r);
}

static void test_catchup_serves_snapshot_where_entries_were_truncated(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    for (uint32_t s = 0; s < 200; s++)
        pxc_submit(c, 0, 5, s, 1);
    pxc_run(c, 100000);
    for (uint32_t t = 0; t < 10; t++) { /* heartbeats: acks, then truncation hints */
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
    struct px_node *n1 = c->node[1].px;
    /* ask node 1 for instance 1, which it dropped */
    struct px_msg q = pxu_msg(PX_MSG_CATCHUP_REQ, 2, 1, 0, 1);
    px_node_step(n1, &q, c->ready);
    struct px_ready *r = c->ready;
    int k = pxu_find(r, PX_MSG_SNAPSHOT, 0);
    assert_true(k >= 0);
    const struct px_history *f = px_node_history(n1);
    assert_int_equal(r->msgs[k].instance, f->applied);
    assert_int_equal(r->msgs[k].u.snapshot.reserved_a, 0); /* no state machine's value */
    assert_int_equal(r->msgs[k].u.snapshot.digest, f->digest);
    assert_int_equal(r->msgs[k].u.snapshot.requests, f->requests);
    /* what it carries is the history of (5,0..199,+1) at instances 1..200 */
    assert_int_equal(f->applied, 200);
    assert_int_equal(f->requests, 200);
    assert_int_equal(f->digest, pxc_digest_run(1, 200, 5, 0, NULL, 1));
    assert_int_equal(r->msgs[k].snapshot_parts, 1); /* one client: one part */
    k = pxu_find(r, PX_MSG_SNAPSHOT_PART, (uint32_t)k);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].u.snapshot_part.client_id, 5);
    assert_int_equal(r->msgs[k].u.snapshot_part.seq_low, 200); /* seq_low: 0..199 applied */
    px_ready_clear(r);
    pxc_free(c);
}

static void test_catchup_snapshot_is_installed_only_when_complete(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(2, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg h = pxu_msg(PX_MSG_SNAPSHOT, 0, 2, 0, 50);
    h.snapshot_parts = 2;
    h.u.snapshot.digest = 0xabc;
    h.u.snapshot.requests = 40;
    px_node_step(n, &h, r);
    assert_int_equal(px_node_history(n)->applied, 0);
    struct px_msg p0 = pxu_msg(PX_MSG_SNAPSHOT_PART, 0, 2, 0, 50);
    p0.part_seen0 = 1;
    p0.u.snapshot_part.index = 0;
    p0.u.snapshot_part.client_id = 4;
    p0.u.snapshot_part.seq_low = 30;
    px_node_step(n, &p0, r);
    px_node_step(n, &p0, r); /* a duplicate part does not complete it */
    assert_int_equal(px_node_history(n)->applied, 0);
    assert_int_equal(r->snapshot, 0);
    struct px_msg p1 = pxu_msg(PX_MSG_SNAPSHOT_PART, 0, 2, 0, 50);
    p1.u.snapshot_part.index = 1;
    p1.u.snapshot_part.client_id = 6;
    p1.u.snapshot_part.seq_low = 10;
    px_node_step(n, &p1, r);
    const struct px_history *f = px_node_history(n);
    assert_int_equal(f->applied, 50);
    assert_int_equal(f->digest, 0xabc);
    assert_int_equal(f->requests, 40);
    assert_int_equal(f->clients[0].client_id, 4);
    assert_int_equal(f->clients[0].seq_low, 30);
    assert_int_equal(f->clients[0].seen[0], 1);
    assert_int_equal(f->clients[1].client_id, 6);
    /* the installed history is exactly the snapshot's: header and parts, nothing else */
    struct px_history want;
    px_history_init(&want);
    want.applied = 50;
    want.digest = 0xabc;
    want.requests = 40;
    want.clients[0] = (struct px_dedup){.client_id = 4, .seq_low = 30, .seen = {1}};
    want.clients[1] = (struct px_dedup){.client_id = 6, .seq_low = 10};
    assert_memory_equal(f, &want, sizeof(want));
    assert_int_equal(r->snapshot, 50);
    assert_int_equal(px_node_stats(n)->snapshots_installed, 1);
    int k = -1;
    for (uint32_t i = 0; i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE)
            k = (int)i;
    assert_true(k >= 0);
    assert_int_equal(r->recs[k].instance, 50);
    pxu_free(n);
    free(r);
}

static void test_log_truncates_behind_every_live_learners_ack_and_tells_the_store(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    for (uint32_t s = 1; s <= 300; s++)
        pxc_submit(c, 0, 5, s, 1);
    pxc_run(c, 100000);
    for (uint32_t t = 0; t < 10; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
    for (uint16_t i = 0; i < 3; i++) {
        const struct pxc_store *st = &c->node[i].st;
        px_inst_t trunc = 0;
        for (size_t k = 0; k < st->recs_len; k++)
            if (st->recs[k].type == PX_REC_TRUNCATE && st->recs[k].instance > trunc)
                trunc = st->recs[k].instance;
        assert_int_equal(trunc, 300);
        assert_true(px_node_stats(c->node[i].px)->truncated > 0);
    }
    pxc_free(c);
}

static void test_log_keeps_entries_a_live_lagging_learner_has_not_acked(void **state)
{
    (void)state;
    struct pxc *c = pxc_new(3, NULL, 8, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    for (uint32_t s = 1; s <= 100; s++)
        pxc_submit(c, 0, 5, s, 1);
    pxc_run(c, 100000);
    /* node 2 stops hearing anything (alive, but its inbox is lost) */
    pxc_drop_queue(c);
    c->node[2].up = false; /* deliveries to it are dropped; the others still think it lives */
    for (uint32_t s = 101; s <= 300; s++)
        pxc_submit(c, 0, 5, s, 1);
    for (uint32_t t = 0; t < 10; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
    /* the leader truncated at most to what node 2 acknowledged (<= 100) */
    const struct pxc_store *st = &c->node[0].st;
    px_inst_t trunc = 0;
    for (size_t k = 0; k < st->recs_len; k++)
        if (st->recs[k].type == PX_REC_TRUNCATE && st->recs[k].instance > trunc)
            trunc = st->recs[k].instance;
    assert_true(trunc <= 100);
    c->node[2].up = true;
    for (uint32_t t = 0; t < 20; t++) {
        pxc_tick_all(c);
        pxc_run(c, 100000);
    }
    assert_int_equal(px_node_history(c->node[2].px)->requests, 300);
    assert_int_equal(px_node_stats(c->node[2].px)->snapshots_installed, 0); /* entries sufficed */
    pxc_free(c);
}

/* The only learner is down: no entry it has not applied may be dropped (no snapshot could
 * replace it), so once the ring is full the leader stops proposing -- backpressure, not loss.
 * When the learner returns it catches up and the queued values are decided. */
static void test_log_full_of_entries_no_learner_applied_stops_the_leader(void **state)
{
    (void)state;
    uint64_t pa = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR;
    uint64_t roles[3] = {pa, PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, PX_ROLE_ACCEPTOR};
    struct pxc *c = pxc_new(3, roles, 64, 0);
    pxc_campaign(c, 0);
    pxc_run(c, 100000);
    for (uint32_t s = 0; s < 10; s++)
        pxc_submit(c, 0, 1, s, 1);
    for (uint32_t t = 0; t < 5; t++) { /* node 1 acknowledges 10 */
        pxc_run(c, 100000);
        pxc_tick_all(c);
    }
    pxc_crash(c, 1);
    uint32_t total = 10 + PX_LOG_MAX + 100;
    for (uint32_t s = 10; s < total; s++) {
        assert_int_equal(pxc_submit(c, 0, 1 + s / 200, s % 200, 1), 0);
        pxc_run(c, 100000);
    }
    const struct px_stats *st = px_node_stats(c->node[0].px);
    assert_int_equal(st->decided, 10 + PX_LOG_MAX); /* instances 1 .. 10 + PX_LOG_MAX */
    pxc_start_node(c, 1);
    for (uint32_t t = 0; t < 200 && px_node_history(c->node[1].px)->requests < total; t++) {
        pxc_run(c, 100000);
        pxc_tick_all(c);
    }
    assert_int_equal(px_node_history(c->node[1].px)->requests, total);
    assert_int_equal(st->decided, total);
    pxc_free(c);
}

static void test_catchup_former_learner_still_serves_its_snapshot(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    for (px_inst_t i = 1; i <= 100; i++) {
        accept_in(n, r, i, 1, i - 1);
        px_ready_clear(r);
    }
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 0, PX_TO_ALL, B, 0);
    hb.u.heartbeat.decided_hi = 100;
    hb.u.heartbeat.truncate_hint = 100; /* every live learner applied 100: drop them */
    px_node_step(n, &hb, r);
    assert_int_equal(px_node_history(n)->applied, 100);
    px_node_set_roles(n, 1, PX_ROLE_ACCEPTOR, r); /* no longer a learner */
    px_ready_clear(r);
    struct px_msg q = pxu_msg(PX_MSG_CATCHUP_REQ, 2, 1, 0, 5);
    px_node_step(n, &q, r);
    int k = pxu_find(r, PX_MSG_SNAPSHOT, 0);
    assert_true(k >= 0);
    assert_int_equal(r->msgs[k].instance, 100);
    pxu_free(n);
    free(r);
}

static void test_catchup_entry_below_the_ring_base_is_applied_straight_away(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    px_node_set_roles(n, 1, PX_ROLE_ACCEPTOR, r); /* not a learner while the log moves on */
    for (px_inst_t i = 1; i <= 100; i++) {
        accept_in(n, r, i, 1, i - 1);
        px_ready_clear(r);
    }
    struct px_msg hb = pxu_msg(PX_MSG_HEARTBEAT, 0, PX_TO_ALL, B, 0);
    hb.u.heartbeat.decided_hi = 100;
    hb.u.heartbeat.truncate_hint = 100;
    px_node_step(n, &hb, r); /* drops 1..100: it applied none of them */
    px_node_set_roles(n, 1, PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER, r);
    px_ready_clear(r);
    struct px_msg e = pxu_msg(PX_MSG_CATCHUP_ENTRY, 0, 1, 0, 1);
    e.u.catchup_entry.value = (struct px_value){.word = 7, .client_id = 1, .seq = 1};
    px_node_step(n, &e, r);
    assert_int_equal(r->apply_len, 1);
    assert_int_equal(px_node_history(n)->applied, 1);
    assert_int_equal(px_node_history(n)->requests, 1);
    assert_int_equal(px_node_history(n)->digest, pxc_digest_step(0, 1, 1, 1, 7));
    pxu_free(n);
    free(r);
}

static void test_catchup_snapshot_older_than_applied_is_never_installed(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(2, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg h = pxu_msg(PX_MSG_SNAPSHOT, 0, 2, 0, 3);
    h.snapshot_parts = 1; /* one part to come */
    h.u.snapshot.digest = 999;
    h.u.snapshot.requests = 999;
    px_node_step(n, &h, r);
    for (px_inst_t i = 1; i <= 4; i++) { /* entries overtake it meanwhile */
        struct px_msg e = pxu_msg(PX_MSG_CATCHUP_ENTRY, 0, 2, 0, i);
        e.u.catchup_entry.value = (struct px_value){.word = 1, .client_id = 1, .seq = (uint32_t)i};
        px_node_step(n, &e, r);
    }
    assert_int_equal(px_node_history(n)->applied, 4);
    struct px_msg p = pxu_msg(PX_MSG_SNAPSHOT_PART, 0, 2, 0, 3);
    p.u.snapshot_part.index = 0;
    p.u.snapshot_part.client_id = 1;
    p.u.snapshot_part.seq_low = 1;
    px_node_step(n, &p, r);
    assert_int_equal(px_node_history(n)->applied, 4); /* never backwards */
    /* the history of the four entries (1,1..4,+1) at 1..4, not the snapshot's */
    assert_int_equal(px_node_history(n)->requests, 4);
    assert_int_equal(px_node_history(n)->digest, pxc_digest_run(1, 4, 1, 1, NULL, 1));
    assert_int_equal(px_node_stats(n)->snapshots_installed, 0);
    pxu_free(n);
    free(r);
}

static void test_log_truncate_record_follows_every_base_move(void **state)
{
    (void)state;
    struct px_node *n = pxu_node(1, 3, false);
    struct px_ready *r = pxu_ready();
    struct px_msg d = pxu_msg(PX_MSG_DECIDE, 0, PX_TO_ALL, B, 0);
    d.u.decide.hi = 5000;
    px_node_step(n, &d, r);
    px_ready_clear(r);
    /* a decided entry far ahead slides the ring (inside the learner, not via an ACCEPT) */
    struct px_msg e = pxu_msg(PX_MSG_CATCHUP_ENTRY, 0, 1, 0, 4500);
    e.u.catchup_entry.value = (struct px_value){.word = 1, .client_id = 1, .seq = 1};
    px_node_step(n, &e, r);
    int k = -1;
    for (uint32_t i = 0; i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE)
            k = (int)i;
    assert_true(k >= 0);
    assert_int_equal(r->recs[k].instance, 4500 - PX_LOG_MAX);
    pxu_free(n);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catchup_learner_with_gap_asks_leader_from_applied_plus_one),
        cmocka_unit_test(test_catchup_peer_serves_bounded_batch_marked_last),
        cmocka_unit_test(test_catchup_entries_fill_gap_and_learner_asks_for_next_batch),
        cmocka_unit_test(test_catchup_serves_snapshot_where_entries_were_truncated),
        cmocka_unit_test(test_catchup_snapshot_is_installed_only_when_complete),
        cmocka_unit_test(test_log_truncates_behind_every_live_learners_ack_and_tells_the_store),
        cmocka_unit_test(test_log_keeps_entries_a_live_lagging_learner_has_not_acked),
        cmocka_unit_test(test_log_full_of_entries_no_learner_applied_stops_the_leader),
        cmocka_unit_test(test_catchup_former_learner_still_serves_its_snapshot),
        cmocka_unit_test(test_catchup_entry_below_the_ring_base_is_applied_straight_away),
        cmocka_unit_test(test_catchup_snapshot_older_than_applied_is_never_installed),
        cmocka_unit_test(test_log_truncate_record_follows_every_base_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
