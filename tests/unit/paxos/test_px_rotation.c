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
        assert_int_equal(px_node_fib(c->node[i].px)->requests, 30);
        assert_int_equal(px_node_fib(c->node[i].px)->value, pxc_fib_number(31));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_hands_leadership_to_next_proposer_every_k_decisions),
        cmocka_unit_test(test_rotation_skips_a_dead_proposer),
        cmocka_unit_test(test_rotation_skips_nodes_that_are_not_proposers),
        cmocka_unit_test(test_rotation_without_another_proposer_keeps_leading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
