/* test_life.c: the life lock (ipc/life.h): a watcher learns of a holder's death from the lock
 * the kernel releases, with the incarnation that died; a normal start is never reported; a
 * holder that finds the lock left by a dead predecessor takes it; quit ends a watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <urcu/uatomic.h>

#include "ipc/life.h"

static struct ipc_life *shared_life(void)
{
    void *p = mmap(NULL, sizeof(struct ipc_life), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(ipc_life_init(p), 0);
    return p;
}

/* A child that takes the lock as `incarnation` and then waits to be killed (or exits at once
 * with `then_exit`). Children never call cmocka asserts: they _exit with a status. */
static pid_t holder(struct ipc_life *l, uint32_t incarnation, bool then_exit)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (ipc_life_hold(l, incarnation) != 0)
            _exit(2);
        if (then_exit)
            _exit(0);
        for (;;)
            pause();
    }
    return pid;
}

/* Waits (bounded) until the holder published its incarnation. */
static void wait_published(struct ipc_life *l, uint32_t incarnation)
{
    for (int i = 0; i < 10000 && uatomic_read(&l->incarnation) != incarnation; i++)
        usleep(1000);
    assert_int_equal(uatomic_read(&l->incarnation), incarnation);
}

static void test_watcher_learns_of_a_killed_holder_with_its_incarnation(void **state)
{
    (void)state;
    struct ipc_life *l = shared_life();
    pid_t pid = holder(l, 7, false);
    wait_published(l, 7);
    assert_int_equal(kill(pid, SIGKILL), 0);
    uint32_t seen = 0;
    int quit = 0;
    assert_int_equal(ipc_life_watch(l, &seen, &quit), 1);
    assert_int_equal(seen, 7);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    munmap(l, sizeof(*l));
}

static void test_each_incarnation_is_reported_once_and_in_turn(void **state)
{
    (void)state;
    struct ipc_life *l = shared_life();
    uint32_t seen = 0;
    int quit = 0;
    for (uint32_t inc = 1; inc <= 3; inc++) {
        pid_t pid = holder(l, inc, false);
        wait_published(l, inc);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(ipc_life_watch(l, &seen, &quit), 1);
        assert_int_equal(seen, inc);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
    }
    munmap(l, sizeof(*l));
}

static void test_holder_takes_the_lock_a_dead_predecessor_left(void **state)
{
    (void)state;
    struct ipc_life *l = shared_life();
    /* Incarnation 1 exits with nobody watching: the lock is left "owner died". */
    pid_t first = holder(l, 1, true);
    int st = 0;
    assert_int_equal(waitpid(first, &st, 0), first);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Incarnation 2 still takes it (recovering it), and its death is the one reported. */
    pid_t second = holder(l, 2, false);
    wait_published(l, 2);
    assert_int_equal(kill(second, SIGKILL), 0);
    uint32_t seen = 1;
    int quit = 0;
    assert_int_equal(ipc_life_watch(l, &seen, &quit), 1);
    assert_int_equal(seen, 2);
    assert_int_equal(waitpid(second, &st, 0), second);
    assert_true(WIFSIGNALED(st));
    munmap(l, sizeof(*l));
}

static void test_quit_ends_a_watch_of_a_live_holder(void **state)
{
    (void)state;
    struct ipc_life *l = shared_life();
    pid_t pid = holder(l, 4, false);
    wait_published(l, 4);
    uint32_t seen = 0;
    int quit = 1; /* set before: the watch returns at its next look */
    assert_int_equal(ipc_life_watch(l, &seen, &quit), 0);
    assert_int_equal(seen, 0); /* nothing died */
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    munmap(l, sizeof(*l));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watcher_learns_of_a_killed_holder_with_its_incarnation),
        cmocka_unit_test(test_each_incarnation_is_reported_once_and_in_turn),
        cmocka_unit_test(test_holder_takes_the_lock_a_dead_predecessor_left),
        cmocka_unit_test(test_quit_ends_a_watch_of_a_live_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
