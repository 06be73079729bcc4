/* test_restart.c: the rule for when a dead node is restarted during the drive
 * (src/supervisor/restart.h): a dead leader's restart waits for the fail-over, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "supervisor/restart.h"

#define MS 1000000ull

/* A leader died at t = 1 s; now is 2 ms later; nothing decided since; a quorum is up. */
static struct sup_restart_view fail_over(void)
{
    return (struct sup_restart_view){.now_ns = 1002 * MS,
                                     .died_ns = 1000 * MS,
                                     .died_leading = true,
                                     .decided_ns = 999 * MS,
                                     .quorum_without = true,
                                     .drive_running = true};
}

static void test_dead_leader_waits_while_the_fail_over_runs(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    assert_true(sup_restart_holds(&v));
}

static void test_dead_leader_restarts_once_another_leader_decided(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    v.decided_ns = 1001 * MS;
    assert_false(sup_restart_holds(&v));
}

static void test_dead_leader_restarts_after_the_hold_even_without_a_decision(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    v.now_ns = v.died_ns + SUP_RESTART_HOLD_NS - 1;
    assert_true(sup_restart_holds(&v));
    v.now_ns = v.died_ns + SUP_RESTART_HOLD_NS;
    assert_false(sup_restart_holds(&v));
}

static void test_dead_follower_restarts_at_once(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    v.died_leading = false;
    assert_false(sup_restart_holds(&v));
}

static void test_node_needed_for_a_quorum_restarts_at_once(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    v.quorum_without = false;
    assert_false(sup_restart_holds(&v));
}

static void test_nothing_waits_outside_the_drive(void **state)
{
    (void)state;
    struct sup_restart_view v = fail_over();
    v.drive_running = false; /* the stop phase restarts a node to publish its final state */
    assert_false(sup_restart_holds(&v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_leader_waits_while_the_fail_over_runs),
        cmocka_unit_test(test_dead_leader_restarts_once_another_leader_decided),
        cmocka_unit_test(test_dead_leader_restarts_after_the_hold_even_without_a_decision),
        cmocka_unit_test(test_dead_follower_restarts_at_once),
        cmocka_unit_test(test_node_needed_for_a_quorum_restarts_at_once),
        cmocka_unit_test(test_nothing_waits_outside_the_drive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
