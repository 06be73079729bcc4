/* The public API (include/paxos-shm/paxos_shm.h): every call's misuse, and a real pool of a
 * counter state machine: results, exactly-once, a command over the maximum, a callback that
 * fails once, chaos. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "paxos-shm/paxos_shm.h"

/* --- a counter: a command of 8 bytes adds them (little endian) to the total, a shorter one
 * is refused with status 1; the result is the new total. --- */
struct counter {
    uint64_t total;
    uint64_t out;
    uint32_t node;
    const char *fail_once; /* a file: the first apply of index 40 on node 1 fails if absent */
    bool poison;           /* the command "poison" fails on every node, every time */
    int start_fails_on;    /* this node's start always fails; -1: none */
    bool slow;             /* adding 777 takes 1.5 s: its result comes late */
    bool term_parent;      /* node 0's start sends SIGTERM to the embedding process */
    uint32_t pad;          /* zero bytes a snapshot writes after the total (restore skips) */
    uint64_t *snapshots;   /* shared with the nodes (MAP_SHARED): snapshot calls, all nodes */
};

static int c_start(void *ctx, uint32_t node)
{
    struct counter *c = ctx;
    c->total = 0;
    c->node = node;
    if (c->term_parent && node == 0)
        kill(getppid(), SIGTERM); /* while pxs_open waits for the nodes to load */
    return (int)node == c->start_fails_on ? -EIO : 0;
}

static int c_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                   size_t *result_len)
{
    struct counter *c = ctx;
    if (c->fail_once != NULL && c->node == 1 && index == 40) {
        int fd = open(c->fail_once, O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (fd >= 0) {
            close(fd);
            return -EIO; /* this node process ends and is restarted */
        }
    }
    if (c->poison && len == 6 && memcmp(cmd, "poison", 6) == 0)
        return -EIO;
    if (len != 8)
        return 1;
    uint64_t add;
    memcpy(&add, cmd, 8);
    if (c->slow && add == 777)
        usleep(1500 * 1000);
    c->total += add;
    c->out = c->total;
    *result = &c->out;
    *result_len = sizeof(c->out);
    return 0;
}

static int c_snapshot(void *ctx, struct pxs_writer *w)
{
    static const uint8_t zeros[4096];
    struct counter *c = ctx;
    if (c->snapshots != NULL)
        __atomic_fetch_add(c->snapshots, 1, __ATOMIC_RELAXED);
    int rc = w->write(w, &c->total, sizeof(c->total));
    for (uint32_t left = c->pad; rc == 0 && left > 0;) {
        uint32_t n = left < sizeof(zeros) ? left : (uint32_t)sizeof(zeros);
        rc = w->write(w, zeros, n);
        left -= n;
    }
    return rc;
}

static int c_restore(void *ctx, struct pxs_reader *r)
{
    struct counter *c = ctx;
    uint64_t t;
    long n = r->read(r, &t, sizeof(t));
    if (n != (long)sizeof(t))
        return n < 0 ? (int)n : -EPROTO;
    uint8_t skip[4096];
    while ((n = r->read(r, skip, sizeof(skip))) > 0) /* the pad */
        ;
    if (n < 0)
        return (int)n;
    c->total = t;
    return 0;
}

static uint64_t c_digest(void *ctx)
{
    return ((struct counter *)ctx)->total;
}

static struct counter the_counter = {.start_fails_on = -1};

static struct pxs_state_machine counter_sm(void)
{
    struct pxs_state_machine sm = {.size = sizeof(sm),
                                   .ctx = &the_counter,
                                   .start = c_start,
                                   .apply = c_apply,
                                   .snapshot = c_snapshot,
                                   .restore = c_restore,
                                   .digest = c_digest};
    return sm;
}

/* A quiet pool's configuration with timeout_s (0: none) into *c, and the counter with no
 * planted fault; the caller changes what its test needs. */
static struct pxs_state_machine quiet_counter_pool(struct pxs_config *c, uint32_t timeout_s)
{
    pxs_config_init(c);
    c->quiet = 1;
    c->timeout_s = timeout_s;
    the_counter = (struct counter){.start_fails_on = -1};
    return counter_sm();
}

static void never(void *arg, const struct pxs_outcome *o)
{
    (void)arg;
    (void)o;
    fail_msg("a completion ran for a refused submission");
}

static void test_misuse_is_an_error_not_an_abort(void **state)
{
    (void)state;
    struct pxs_config c;
    pxs_config_init(NULL); /* nothing to fill: no crash */
    pxs_config_init(&c);
    struct pxs_state_machine sm = counter_sm();
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(NULL, &sm, &p), -EINVAL);
    assert_int_equal(pxs_open(&c, NULL, &p), -EINVAL);
    assert_int_equal(pxs_open(&c, &sm, NULL), -EINVAL);
    struct pxs_config bad = c;
    bad.nodes = 0;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.nodes = 65;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.window = 0;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.command_max = PXS_COMMAND_MAX_LIMIT + 1;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.acceptors = 4;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.size = 0;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.data_dir = "/nonexistent-pxs-data-dir";
    assert_int_equal(pxs_open(&bad, &sm, &p), -ENOENT);
    bad.data_dir = "/dev/null";
    assert_int_equal(pxs_open(&bad, &sm, &p), -ENOTDIR);
    struct pxs_state_machine no_apply = sm;
    no_apply.apply = NULL;
    assert_int_equal(pxs_open(&c, &no_apply, &p), -EINVAL);
    struct pxs_state_machine no_size = sm;
    no_size.size = 0;
    assert_int_equal(pxs_open(&c, &no_size, &p), -EINVAL);
    bad = c; /* the shm store keeps nothing after pxs_close: a data dir would lie */
    bad.store = PXS_STORE_SHM;
    bad.data_dir = "/tmp";
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad.data_dir = NULL; /* more than the segment may reserve */
    bad.shm_state_max = 2ull << 30;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad.shm_state_max = 0;
    bad.command_max = PXS_COMMAND_MAX_LIMIT;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c; /* the shm store's log holds 8192 entries: a snapshot must come well within */
    bad.store = PXS_STORE_SHM;
    bad.snapshot_log_entries = PXS_SHM_SNAPSHOT_ENTRIES_MAX + 1;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    bad = c;
    bad.reserved = 1;
    assert_int_equal(pxs_open(&bad, &sm, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(pxs_submit(NULL, "x", 1, never, NULL), -EINVAL);
    assert_int_equal(pxs_poll(NULL, 0), -EINVAL);
    struct pxs_outcome o;
    assert_int_equal(pxs_call(NULL, "x", 1, NULL, 0, &o), -EINVAL);
    assert_int_equal(pxs_close(NULL, NULL), PXS_EXIT_USAGE);
    assert_non_null(pxs_strerror(-EMSGSIZE));
    assert_non_null(pxs_version());
}

/* A completion that calls back into the pool: submitting is allowed, polling is not. */
struct reentry {
    struct pxs_pool *p;
    int poll_rc, call_rc, close_rc, submit_rc;
    bool ran;
};

static void count_nothing(void *arg, const struct pxs_outcome *o)
{
    (void)arg;
    (void)o;
}

static void reenter(void *arg, const struct pxs_outcome *o)
{
    struct reentry *r = arg;
    struct pxs_outcome inner;
    uint64_t add = 1;
    (void)o;
    r->ran = true;
    r->poll_rc = pxs_poll(r->p, 0);
    r->call_rc = pxs_call(r->p, &add, sizeof(add), NULL, 0, &inner);
    r->close_rc = pxs_close(r->p, NULL);
    r->submit_rc = pxs_submit(r->p, &add, sizeof(add), count_nothing, NULL);
}

static void test_a_completion_may_submit_but_not_poll(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 0);
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    struct reentry r = {.p = p};
    uint64_t add = 1;
    assert_int_equal(pxs_submit(p, &add, sizeof(add), reenter, &r), 0);
    while (!r.ran)
        assert_true(pxs_poll(p, 100) >= 0);
    assert_int_equal(r.poll_rc, -EDEADLK);
    assert_int_equal(r.call_rc, -EDEADLK);
    assert_int_equal(r.close_rc, PXS_EXIT_USAGE);
    assert_int_equal(r.submit_rc, 0);
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.sm_digest, 2); /* the first command and the one its completion sent */
}

struct seen {
    uint64_t completions, lost, refused, bad;
};

static void count_done(void *arg, const struct pxs_outcome *o)
{
    struct seen *s = arg;
    s->completions++;
    if (o->err != 0) {
        s->bad++;
        return;
    }
    if (o->result_lost)
        s->lost++;
    else if (o->status == 0 && o->result_len != 8)
        s->bad++;
    if (o->status == 1)
        s->refused++;
}

static uint64_t run_pool(uint32_t nodes, uint32_t chaos, const char *fail_once, uint32_t n,
                         struct seen *seen, struct pxs_report *rep, int *code)
{
    struct pxs_config c;
    pxs_config_init(&c);
    c.nodes = nodes;
    c.chaos_kills = chaos;
    c.command_max = 64;
    c.quiet = chaos == 0;
    c.timeout_s = 120;
    the_counter.fail_once = fail_once;
    the_counter.poison = false;
    the_counter.start_fails_on = -1;
    struct pxs_state_machine sm = counter_sm();
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    assert_int_equal(pxs_open(&c, &sm, &p), -EBUSY); /* one pool per process */
    uint8_t over[65] = {0};
    assert_int_equal(pxs_submit(p, over, sizeof(over), never, NULL), -EMSGSIZE);
    assert_int_equal(pxs_submit(p, NULL, 3, never, NULL), -EINVAL);
    uint64_t sum = 0;
    int rc;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t add = i + 1;
        sum += add;
        while ((rc = pxs_submit(p, &add, sizeof(add), count_done, seen)) == -EAGAIN)
            assert_true(pxs_poll(p, 100) >= 0);
        assert_int_equal(rc, 0);
    }
    while ((rc = pxs_submit(p, "abc", 3, count_done, seen)) == -EAGAIN) /* refused by apply */
        assert_true(pxs_poll(p, 100) >= 0);
    assert_int_equal(rc, 0);
    uint64_t zero = 0, total = 0;
    struct pxs_outcome o;
    assert_int_equal(pxs_call(p, &zero, sizeof(zero), &total, sizeof(total), &o), 0);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.result_len, 8);
    assert_int_equal(total, sum); /* every command before it applied exactly once */
    rep->size = sizeof(*rep);
    *code = pxs_close(p, rep);
    assert_int_equal(pxs_submit(NULL, &zero, 8, never, NULL), -EINVAL);
    return sum;
}

static void test_a_counter_pool_applies_every_command_once(void **state)
{
    (void)state;
    struct seen seen = {0};
    struct pxs_report rep;
    int code;
    uint64_t sum = run_pool(3, 0, NULL, 2000, &seen, &rep, &code);
    assert_int_equal(code, PXS_EXIT_VERIFIED);
    assert_int_equal(seen.completions, 2001);
    assert_int_equal(seen.bad, 0);
    assert_int_equal(seen.refused, 1);
    assert_int_equal(rep.learners, 3);
    assert_int_equal(rep.learners_agree, 3);
    assert_int_equal(rep.sm_digest, sum);
    assert_int_equal(rep.applied, 2002);
}

static void test_chaos_and_a_failing_callback_keep_exactly_once(void **state)
{
    (void)state;
    char flag[] = "/tmp/pxs-test-fail-XXXXXX";
    int fd = mkstemp(flag);
    assert_true(fd >= 0);
    close(fd);
    unlink(flag); /* absent: the first apply of index 40 on node 1 fails */
    struct seen seen = {0};
    struct pxs_report rep;
    int code;
    uint64_t sum = run_pool(5, 4, flag, 3000, &seen, &rep, &code);
    assert_int_equal(access(flag, F_OK), 0); /* the callback did fail once */
    unlink(flag);
    assert_int_equal(code, PXS_EXIT_VERIFIED);
    assert_int_equal(seen.completions, 3001);
    assert_int_equal(seen.bad, 0);
    assert_int_equal(rep.learners_agree, 5);
    assert_int_equal(rep.sm_digest, sum);
    assert_true(rep.chaos_kills >= 1);
    assert_true(rep.restarts >= rep.chaos_kills + 1); /* the kills and the failed callback */
}

/* A stop signal ends the pool (143), and a closed pool gives the process its signal handling
 * back: the next pool opens as if none had been. */
static void test_a_closed_pool_gives_the_signals_back(void **state)
{
    (void)state;
    struct sigaction before, after;
    assert_int_equal(sigaction(SIGTERM, NULL, &before), 0);
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 0);
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    assert_int_equal(raise(SIGTERM), 0); /* the pool's handler takes it */
    assert_int_equal(pxs_poll(p, 100), -ESHUTDOWN);
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_SIGNAL_BASE + SIGTERM);
    assert_int_equal(sigaction(SIGTERM, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t add = 3, total = 0;
    struct pxs_outcome o;
    assert_int_equal(pxs_call(p, &add, sizeof(add), &total, sizeof(total), &o), 0);
    assert_int_equal(total, 3);
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_VERIFIED);
}

/* The only learner is slow to apply a command, so its result comes too late and the command
 * completes with result_lost: pxs_poll returns that completion when it happens (it counted
 * only replies, so a pxs_poll(-1) waited out its whole timeout after such a completion). */
static void test_a_lost_result_is_a_completion_pxs_poll_counts(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 60);
    c.nodes = 3;
    c.proposers = 2; /* nodes 0 and 1 lead; node 2, the only learner, reports results */
    c.learners = 1;
    the_counter.slow = true;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    struct seen seen = {0};
    uint64_t add = 777;
    assert_int_equal(pxs_submit(p, &add, sizeof(add), count_done, &seen), 0);
    int got = 0;
    while (seen.completions == 0) {
        int rc = pxs_poll(p, 20000);
        assert_true(rc >= 0);
        got += rc;
    }
    assert_int_equal(got, 1); /* the completion that happened in pxs_poll is counted */
    assert_int_equal(seen.lost, 1);
    assert_int_equal(seen.bad, 0);
    add = 1;
    uint64_t total = 0, zero = 0;
    struct pxs_outcome o;
    assert_int_equal(pxs_call(p, &add, sizeof(add), &total, sizeof(total), &o), 0);
    do /* the learner may still be asleep: results come again once it wakes */
        assert_int_equal(pxs_call(p, &zero, sizeof(zero), &total, sizeof(total), &o), 0);
    while (o.result_lost);
    assert_int_equal(total, 778); /* applied once all the same */
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.sm_digest, 778);
}

/* A stop signal while pxs_open starts the pool: -EINTR (not a failure to start, -EIO), nothing
 * left running, the process's own handling back, and the next open works. */
static void test_a_stop_signal_during_open_is_eintr(void **state)
{
    (void)state;
    struct sigaction before, after;
    assert_int_equal(sigaction(SIGTERM, NULL, &before), 0);
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 60);
    the_counter.term_parent = true;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), -EINTR);
    assert_int_equal(sigaction(SIGTERM, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    the_counter.term_parent = false;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_VERIFIED);
}

/* Submits the counter commands 1, 2, ..., n, waits for every completion (none bad) and returns
 * their sum. */
static uint64_t add_one_to_n(struct pxs_pool *p, uint64_t n)
{
    struct seen seen = {0};
    uint64_t sum = 0;
    int rc;
    for (uint64_t i = 1; i <= n; i++) {
        sum += i;
        while ((rc = pxs_submit(p, &i, sizeof(i), count_done, &seen)) == -EAGAIN)
            assert_true(pxs_poll(p, 100) >= 0);
        assert_int_equal(rc, 0);
    }
    while (seen.completions < n)
        assert_true(pxs_poll(p, 100) >= 0);
    assert_int_equal(seen.bad, 0);
    return sum;
}

/* A small state and short commands: learners snapshot seldom (after 4 MiB of log or 65536
 * entries), so a node killed after 8000 and 16000 commands restarts from a log of thousands of
 * entries with their bytes, more than the core's ring holds, and replays it. */
static void test_a_long_log_between_snapshots_survives_restarts(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 120);
    c.nodes = 3;
    c.chaos_kills = 2;
    c.chaos_every = 8000;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t sum = add_one_to_n(p, 24000);
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.chaos_kills, 2);
    assert_int_equal(rep.sm_digest, sum);
    assert_int_equal(rep.learners_agree, 3);
}

/* Commands of 1 MiB (the counter refuses them with status 1, and they count in the log) make
 * a learner snapshot at every truncation of the log (every 64 instances or so, once the log
 * since the last snapshot holds 4 MiB): on the shm store, into its command area. */
static int big_calls(struct pxs_pool *p, uint32_t n)
{
    static uint8_t big[1u << 20];
    struct pxs_outcome o;
    for (uint32_t i = 0; i < n; i++) {
        big[0] = (uint8_t)i;
        int rc = pxs_call(p, big, sizeof(big), NULL, 0, &o);
        if (rc != 0)
            return rc;
        assert_int_equal(o.status, 1);
    }
    return 0;
}

/* Snapshot calls (on every node) of a pool of n commands adding 1..n, with the policy given. */
static uint64_t snapshots_of(enum pxs_store store, uint64_t log_bytes, uint32_t log_entries,
                             uint64_t n)
{
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 120);
    c.store = store;
    c.snapshot_log_bytes = log_bytes;
    c.snapshot_log_entries = log_entries;
    uint64_t *calls =
        mmap(NULL, sizeof(*calls), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(calls != MAP_FAILED);
    *calls = 0;
    the_counter.snapshots = calls;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t sum = add_one_to_n(p, n);
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.sm_digest, sum);
    uint64_t got = __atomic_load_n(calls, __ATOMIC_RELAXED);
    the_counter.snapshots = NULL;
    munmap(calls, sizeof(*calls));
    return got;
}

/* config.snapshot_log_bytes and snapshot_log_entries decide when learners snapshot: 2000
 * commands of 8 bytes are far below the defaults (4 MiB, 65536 entries: no snapshot at all),
 * while 50 entries, or 3600 bytes (50 entries of 8 bytes counted 72 each), make the learners
 * snapshot at the log's truncation points (a few per learner here: the leader's heartbeats
 * set them). On shm, 2048 entries is the default: 2000 commands take none there either. */
static void test_the_snapshot_policy_is_the_callers(void **state)
{
    (void)state;
    assert_int_equal(snapshots_of(PXS_STORE_SQLITE, 0, 0, 2000), 0);
    assert_true(snapshots_of(PXS_STORE_SQLITE, 0, 50, 2000) >= 3);
    assert_true(snapshots_of(PXS_STORE_SQLITE, 3600, 0, 2000) >= 3);
    assert_int_equal(snapshots_of(PXS_STORE_SHM, 0, 0, 2000), 0);
    assert_true(snapshots_of(PXS_STORE_SHM, 0, 50, 2000) >= 3);
}

/* A library pool on the shm store: snapshots of 200 KB taken into the nodes' command areas,
 * nodes killed and restored from them, every command applied once. */
static void test_a_shm_pool_keeps_snapshots_across_kills(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 120);
    c.store = PXS_STORE_SHM;
    c.shm_state_max = 1u << 20;
    c.chaos_kills = 3;
    c.chaos_every = 60;
    the_counter.pad = 200000;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t sum = 0;
    struct pxs_outcome o;
    for (uint64_t i = 1; i <= 240; i++) {
        sum += i;
        uint64_t total = 0;
        assert_int_equal(pxs_call(p, &i, sizeof(i), &total, sizeof(total), &o), 0);
        if (!o.result_lost)
            assert_int_equal(total, sum);
        if (i % 4 == 0)
            assert_int_equal(big_calls(p, 1), 0);
    }
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.sm_digest, sum);
    assert_int_equal(rep.learners_agree, 3);
    assert_true(rep.chaos_kills >= 1);
    the_counter.pad = 0;
}

/* Short commands on the shm store: 20000 of them, more than its 8192 log slots, so the log
 * must be truncated (after a snapshot) long before the 4 MiB or 65536 entries that make a
 * learner snapshot on sqlite. It stopped at instance 8193 with "log area full" before. */
static void test_a_shm_pool_of_short_commands_outlasts_its_log_slots(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 120);
    c.store = PXS_STORE_SHM;
    c.command_max = 8;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t sum = add_one_to_n(p, 20000);
    struct pxs_report rep = {.size = sizeof(rep)};
    assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
    assert_int_equal(rep.sm_digest, sum);
}

/* A snapshot longer than config.shm_state_max does not fit: its node stops with the store's
 * line and the pool with it (PXS_EXIT_RUNTIME), never a restart loop. */
static void test_a_snapshot_over_shm_state_max_stops_the_pool(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 60);
    c.store = PXS_STORE_SHM;
    c.shm_state_max = 4096;
    the_counter.pad = 300000;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    assert_int_equal(big_calls(p, 400), -ESHUTDOWN); /* the first truncation comes after 64 */
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_RUNTIME);
    the_counter.pad = 0;
}

static void test_an_apply_that_always_fails_stops_the_pool(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 60);
    the_counter.poison = true;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    uint64_t add = 5, total = 0;
    struct pxs_outcome o;
    assert_int_equal(pxs_call(p, &add, sizeof(add), &total, sizeof(total), &o), 0);
    assert_int_equal(total, 5);
    /* Every learner ends at the poison, again after each restart: the pool gives up. */
    assert_int_equal(pxs_call(p, "poison", 6, NULL, 0, &o), -ESHUTDOWN);
    assert_int_equal(pxs_submit(p, &add, sizeof(add), never, NULL), -ESHUTDOWN);
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_RUNTIME);
}

static void test_a_start_that_always_fails_fails_the_open(void **state)
{
    (void)state;
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 0);
    the_counter.start_fails_on = 1;
    struct pxs_pool *p = NULL;
    assert_int_equal(pxs_open(&c, &sm, &p), -EIO);
    assert_null(p);
    the_counter.start_fails_on = -1;
    assert_int_equal(pxs_open(&c, &sm, &p), 0); /* nothing was left open */
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_VERIFIED);
}

/* A pool opened again on its data dir goes on from the state it reached: every learner restores
 * its snapshot and replays the log above it. */
static void test_a_data_dir_continues_where_it_stopped(void **state)
{
    (void)state;
    char dir[] = "/tmp/pxs-test-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct pxs_config c;
    struct pxs_state_machine sm = quiet_counter_pool(&c, 0);
    c.data_dir = dir;
    uint64_t sum = 0;
    for (int run = 0; run < 3; run++) {
        struct pxs_pool *p = NULL;
        assert_int_equal(pxs_open(&c, &sm, &p), 0);
        uint64_t zero = 0, total = 0;
        struct pxs_outcome o;
        assert_int_equal(pxs_call(p, &zero, sizeof(zero), &total, sizeof(total), &o), 0);
        assert_int_equal(total, sum); /* what the earlier runs left */
        for (uint64_t i = 1; i <= 300; i++) {
            sum += i;
            assert_int_equal(pxs_call(p, &i, sizeof(i), &total, sizeof(total), &o), 0);
            assert_int_equal(total, sum);
        }
        struct pxs_report rep = {.size = sizeof(rep)};
        assert_int_equal(pxs_close(p, &rep), PXS_EXIT_VERIFIED);
        assert_int_equal(rep.sm_digest, sum);
    }
    struct pxs_pool *p = NULL;
    c.command_max = 4096; /* the log's requests were made with 1 MiB: refused, nothing done */
    assert_int_equal(pxs_open(&c, &sm, &p), -EEXIST);
    c.command_max = PXS_COMMAND_MAX_DEFAULT;
    assert_int_equal(pxs_open(&c, &sm, &p), 0);
    struct pxs_outcome o;
    uint64_t zero = 0, total = 0;
    assert_int_equal(pxs_call(p, &zero, sizeof(zero), &total, sizeof(total), &o), 0);
    assert_int_equal(total, sum);
    assert_int_equal(pxs_close(p, NULL), PXS_EXIT_VERIFIED);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* argv[1]: a cmocka filter (a test name pattern), e.g. "test_misuse*". */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misuse_is_an_error_not_an_abort),
        cmocka_unit_test(test_a_counter_pool_applies_every_command_once),
        cmocka_unit_test(test_chaos_and_a_failing_callback_keep_exactly_once),
        cmocka_unit_test(test_an_apply_that_always_fails_stops_the_pool),
        cmocka_unit_test(test_a_data_dir_continues_where_it_stopped),
        cmocka_unit_test(test_a_completion_may_submit_but_not_poll),
        cmocka_unit_test(test_a_closed_pool_gives_the_signals_back),
        cmocka_unit_test(test_a_start_that_always_fails_fails_the_open),
        cmocka_unit_test(test_a_lost_result_is_a_completion_pxs_poll_counts),
        cmocka_unit_test(test_a_stop_signal_during_open_is_eintr),
        cmocka_unit_test(test_a_long_log_between_snapshots_survives_restarts),
        cmocka_unit_test(test_a_shm_pool_keeps_snapshots_across_kills),
        cmocka_unit_test(test_a_snapshot_over_shm_state_max_stops_the_pool),
        cmocka_unit_test(test_a_shm_pool_of_short_commands_outlasts_its_log_slots),
        cmocka_unit_test(test_the_snapshot_policy_is_the_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
