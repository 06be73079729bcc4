/* test_segment.c: the shared-memory segment (ipc/segment.h): creation, attachment, refusal of
 * foreign or stale segments, cleanup. Every name contains this test's pid and every test
 * unlinks what it created, so nothing is left in /dev/shm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "ipc/segment.h"
#include "ipc_test.h"

#define ERR_MAX 256

static const struct ipc_layout small_layout = {
    .endpoints = 5, .ring_slots = 16, .bcast_slots = 8, .bcast_producers = 4, .user_bytes = 192};

static void test_name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "/paxos-shm-test-%ld-%s", (long)getpid(), what);
}

static bool shm_exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s%s", IPC_SHM_DIR, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_segment_name_is_prefix_and_owner_pid(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX];
    ipc_segment_name(name, sizeof(name), 4242);
    assert_string_equal(name, "/paxos-shm-4242");
}

static void test_segment_create_then_attach_sees_the_same_rings(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "attach");
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), 0);
    assert_memory_equal(ipc_segment_layout(t), &small_layout, sizeof(small_layout));
    assert_int_equal(ipc_segment_bytes(t), ipc_segment_bytes(s));
    /* Every directed ring is distinct, initialised and shared between the two mappings. */
    struct ipc_test_msg m, out;
    for (uint32_t from = 0; from < 5; from++) {
        for (uint32_t to = 0; to < 5; to++) {
            if (from == to)
                continue;
            assert_int_equal(ipc_ring_capacity(ipc_segment_ring(s, from, to)), 16);
            ipc_test_fill(&m, from, to);
            assert_int_equal(ipc_ring_push(ipc_segment_ring(s, from, to), &m, 1), 1);
        }
    }
    for (uint32_t from = 0; from < 5; from++) {
        for (uint32_t to = 0; to < 5; to++) {
            if (from == to)
                continue;
            assert_int_equal(ipc_ring_pop(ipc_segment_ring(t, from, to), &out, 1), 1);
            assert_int_equal(out.stream, from);
            assert_int_equal(out.seq, to);
        }
    }
    /* Broadcast ring p: consumers are the other endpoints < bcast_producers. */
    for (uint32_t p = 0; p < 4; p++) {
        struct ipc_bcast *b = ipc_segment_bcast(s, p);
        assert_int_equal(ipc_bcast_capacity(b), 8);
        assert_int_equal(b->consumers_mask, UINT64_C(0xf) & ~(UINT64_C(1) << p));
        ipc_test_fill(&m, 100 + p, 0);
        assert_int_equal(ipc_bcast_publish(b, &m, 1, 0), 1);
    }
    for (uint32_t p = 0; p < 4; p++) {
        for (uint32_t c = 0; c < 4; c++) {
            if (c == p)
                continue;
            struct ipc_bcast_read_result r = ipc_bcast_read(ipc_segment_bcast(t, p), c, &out, 1);
            assert_int_equal(r.n, 1);
            assert_int_equal(out.stream, 100 + p);
        }
    }
    /* Control blocks and user areas are distinct and shared. */
    for (uint32_t e = 0; e < 5; e++) {
        ipc_segment_ctl(s, e)->incarnation = 10 + e;
        memset(ipc_segment_user(s, e), (int)e + 1, 192);
        assert_int_equal(((uintptr_t)ipc_segment_user(s, e)) % IPC_LINE_BYTES, 0);
    }
    for (uint32_t e = 0; e < 5; e++) {
        assert_int_equal(ipc_segment_ctl(t, e)->incarnation, 10 + e);
        assert_int_equal(ipc_segment_ctl(t, e)->bell.word, 0);
        unsigned char *u = ipc_segment_user(t, e);
        assert_int_equal(u[0], e + 1);
        assert_int_equal(u[191], e + 1);
    }
    ipc_segment_close(t);
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
    assert_false(shm_exists(name));
}

static void test_segment_is_inherited_by_fork_at_the_same_address(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "fork");
    struct ipc_segment *s = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct ipc_test_msg m;
        ipc_test_fill(&m, 9, 9);
        _exit(ipc_ring_push(ipc_segment_ring(s, 1, 0), &m, 1) == 1 ? 0 : 1);
    }
    assert_int_equal(ipc_test_wait(child), 0);
    struct ipc_test_msg out;
    assert_int_equal(ipc_ring_pop(ipc_segment_ring(s, 1, 0), &out, 1), 1);
    assert_true(ipc_test_whole(&out));
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static void test_segment_second_create_with_the_same_name_fails_cleanly(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "twice");
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    assert_int_equal(ipc_segment_create(name, &small_layout, &t, err, sizeof(err)), -EEXIST);
    assert_null(t);
    assert_non_null(strstr(err, "File exists"));
    assert_non_null(strstr(err, name));
    /* The failed creation must not have removed the first one's segment. */
    assert_true(shm_exists(name));
    struct ipc_segment *u = NULL;
    assert_int_equal(ipc_segment_attach(name, &u, err, sizeof(err)), 0);
    ipc_segment_close(u);
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static void test_segment_invalid_layouts_are_refused_with_the_reason(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "invalid");
    struct {
        struct ipc_layout l;
        const char *why;
    } bad[] = {
        {{.endpoints = 1, .ring_slots = 16}, "endpoints 1"},
        {{.endpoints = IPC_ENDPOINTS_MAX + 1, .ring_slots = 16}, "endpoints 66"},
        {{.endpoints = 3, .ring_slots = 12}, "ring_slots 12"},
        {{.endpoints = 3, .ring_slots = 0}, "ring_slots 0"},
        {{.endpoints = 3, .ring_slots = 131072}, "ring_slots 131072"},
        {{.endpoints = 3, .ring_slots = 16, .bcast_slots = 3}, "bcast_slots 3"},
        {{.endpoints = 3, .ring_slots = 16, .bcast_slots = 0, .bcast_producers = 1},
         "bcast_producers 1"},
        {{.endpoints = 3, .ring_slots = 16, .bcast_slots = 4, .bcast_producers = 4},
         "bcast_producers 4"},
        {{.endpoints = 3, .ring_slots = 16, .user_bytes = 100}, "user_bytes 100"},
        {{.endpoints = 65, .ring_slots = 65536}, "segment would be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ipc_segment *s = NULL;
        err[0] = '\0';
        assert_int_equal(ipc_segment_create(name, &bad[i].l, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, bad[i].why));
        assert_false(shm_exists(name));
    }
}

/* Overwrites `len` bytes at `off` of the segment file, as a foreign program or an older build
 * would have left them. */
static void poke(const char *name, size_t off, const void *bytes, size_t len)
{
    int fd = shm_open(name, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void test_segment_attach_refuses_wrong_magic_with_a_clear_error(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "magic");
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    uint64_t magic = UINT64_C(0x1122334455667788);
    poke(name, offsetof(struct ipc_segment_header, magic), &magic, sizeof(magic));
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), -EPROTO);
    assert_null(t);
    assert_non_null(strstr(err, "not an initialised paxos-shm segment"));
    assert_non_null(strstr(err, "0x1122334455667788"));
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static void test_segment_attach_refuses_another_layout_version_with_a_clear_error(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "version");
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    uint32_t version = IPC_SEGMENT_VERSION + 1;
    poke(name, offsetof(struct ipc_segment_header, version), &version, sizeof(version));
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), -EPROTO);
    assert_null(t);
    char want[64];
    snprintf(want, sizeof(want), "layout version %u", IPC_SEGMENT_VERSION + 1);
    assert_non_null(strstr(err, want));
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static void test_segment_attach_refuses_sizes_that_do_not_match_the_layout(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "sizes");
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(name, &small_layout, &s, err, sizeof(err)), 0);
    uint32_t slots = 32; /* the header claims bigger rings than the file holds */
    poke(name, offsetof(struct ipc_segment_header, layout.ring_slots), &slots, sizeof(slots));
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "do not match"));
    ipc_segment_close(s);
    assert_int_equal(ipc_segment_unlink(name), 0);
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, name));
}

static void test_segment_attach_refuses_a_file_too_small_for_a_header(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    test_name(name, sizeof(name), "small");
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 16), 0);
    assert_int_equal(close(fd), 0);
    struct ipc_segment *t = NULL;
    assert_int_equal(ipc_segment_attach(name, &t, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "too small"));
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static void test_segment_unlink_of_a_missing_segment_is_not_an_error(void **state)
{
    (void)state;
    char name[IPC_SEGMENT_NAME_MAX];
    test_name(name, sizeof(name), "missing");
    assert_int_equal(ipc_segment_unlink(name), 0);
}

static int exit_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static void test_segment_clean_stale_removes_dead_owners_and_keeps_live_ones(void **state)
{
    (void)state;
    char dead[IPC_SEGMENT_NAME_MAX], live[IPC_SEGMENT_NAME_MAX], err[ERR_MAX] = "";
    pid_t gone = ipc_test_fork(exit_at_once, NULL);
    assert_int_equal(ipc_test_wait(gone), 0); /* reaped: kill(gone, 0) now fails with ESRCH */
    ipc_segment_name(dead, sizeof(dead), gone);
    ipc_segment_name(live, sizeof(live), getpid());
    struct ipc_segment *s = NULL, *t = NULL;
    assert_int_equal(ipc_segment_create(dead, &small_layout, &s, err, sizeof(err)), 0);
    assert_int_equal(ipc_segment_create(live, &small_layout, &t, err, sizeof(err)), 0);
    unsigned removed = 0;
    assert_int_equal(ipc_segment_clean_stale(&removed), 0);
    assert_true(removed >= 1); /* ours, plus any other dead supervisor's */
    assert_false(shm_exists(dead));
    assert_true(shm_exists(live));
    ipc_segment_close(s);
    ipc_segment_close(t);
    assert_int_equal(ipc_segment_unlink(live), 0);
    assert_false(shm_exists(live));
}

/* Group teardown: a failed test leaves its segment behind; remove every name this file uses. */
static int unlink_all(void **state)
{
    (void)state;
    const char *what[] = {"attach",  "fork",  "twice", "invalid", "magic",
                          "version", "sizes", "small", "missing"};
    char name[IPC_SEGMENT_NAME_MAX];
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        test_name(name, sizeof(name), what[i]);
        (void)ipc_segment_unlink(name);
    }
    ipc_segment_name(name, sizeof(name), getpid());
    (void)ipc_segment_unlink(name);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_name_is_prefix_and_owner_pid),
        cmocka_unit_test(test_segment_create_then_attach_sees_the_same_rings),
        cmocka_unit_test(test_segment_is_inherited_by_fork_at_the_same_address),
        cmocka_unit_test(test_segment_second_create_with_the_same_name_fails_cleanly),
        cmocka_unit_test(test_segment_invalid_layouts_are_refused_with_the_reason),
        cmocka_unit_test(test_segment_attach_refuses_wrong_magic_with_a_clear_error),
        cmocka_unit_test(test_segment_attach_refuses_another_layout_version_with_a_clear_error),
        cmocka_unit_test(test_segment_attach_refuses_sizes_that_do_not_match_the_layout),
        cmocka_unit_test(test_segment_attach_refuses_a_file_too_small_for_a_header),
        cmocka_unit_test(test_segment_unlink_of_a_missing_segment_is_not_an_error),
        cmocka_unit_test(test_segment_clean_stale_removes_dead_owners_and_keeps_live_ones),
    };
    return cmocka_run_group_tests(tests, NULL, unlink_all);
}
