/* bench/ring: one-way throughput and round-trip latency of 64-byte messages between
 * processes, for the ipc SPSC ring, the ipc broadcast ring (15 consumer processes), a pipe and
 * a UNIX socketpair. Every figure is the median of several repetitions; each is also given as
 * a ratio to the SPSC ring. A benchmark prints figures; it asserts nothing about time.
 *
 *   ring [--quick] [--reps N] [--json FILE]
 *
 * Method: the parent forks the processes of one run, they wait on a shared start flag, the
 * parent times from the flag to the last exit. Ring endpoints busy-poll with spin-then-yield
 * (on a 2-core machine shared by 16 processes a pure spin would starve the others). Pipe and
 * socket producers make one write() per message, consumers read up to 64 messages per call,
 * which is what a message-per-syscall design costs. Round trip: one message there and back
 * (for the broadcast ring: one publish, answered by all 15 consumers on SPSC rings). */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urcu/arch.h>
#include <urcu/uatomic.h>

#include "ipc/bcast.h"
#include "ipc/ring.h"

#define BENCH_REPS_MAX         15  /* medians of more add nothing but minutes */
#define BENCH_CONSUMERS        15  /* broadcast consumers, as in the ipc tests */
#define BENCH_BATCH            32u /* ring push/pop batch */
#define BENCH_STREAM_READ_MSGS 64  /* messages per read() on a pipe or socket */
#define BENCH_RING_SLOTS       4096u
#define BENCH_PROCS_MAX        (BENCH_CONSUMERS + 1)

/* BENCH_SPSC1 is the SPSC ring used one message per push and pop (no batching). */
enum bench_kind { BENCH_SPSC, BENCH_SPSC1, BENCH_BCAST, BENCH_PIPE, BENCH_SOCKET, BENCH_KINDS };
static const char *const bench_names[BENCH_KINDS] = {"spsc_ring", "spsc_ring_batch1",
                                                     "bcast_ring_x15", "pipe", "socketpair"};

static bool kind_is_spsc(enum bench_kind kind)
{
    return kind == BENCH_SPSC || kind == BENCH_SPSC1;
}

static uint32_t kind_batch(enum bench_kind kind)
{
    return kind == BENCH_SPSC1 ? 1 : BENCH_BATCH;
}

struct bench_msg {
    uint64_t seq;
    uint64_t pad[7];
};
_Static_assert(sizeof(struct bench_msg) == IPC_SLOT_BYTES, "64-byte messages");

/* Everything the processes of one run share (MAP_SHARED anonymous). */
struct bench_shared {
    uint32_t start;  /* parent -> children: go */
    uint32_t ready;  /* children -> parent: count of processes waiting for start */
    uint64_t bad;    /* children: messages out of order (must stay 0) */
    uint64_t rtt_ns; /* round-trip runs: total time measured by the initiator */
    struct ipc_ring *ring[BENCH_PROCS_MAX]; /* [0]: forward; [c]: reply from consumer c */
    struct ipc_bcast *bcast;
    int fds[2][2]; /* pipe or socket descriptors, [0] forward, [1] back */
};

struct bench_cfg {
    uint64_t oneway_msgs[BENCH_KINDS];
    uint64_t trips[BENCH_KINDS];
    int reps;
};

struct bench_result {
    double msgs_per_s[BENCH_REPS_MAX];
    double rtt_ns[BENCH_REPS_MAX];
    double msgs_per_s_median;
    double rtt_ns_median;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(3);
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void backoff(unsigned *spins)
{
    if (++*spins < 128) {
        caa_cpu_relax();
    } else {
        *spins = 0;
        sched_yield();
    }
}

static void *shared_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(3);
    }
    return p;
}

static void wait_start(struct bench_shared *sh)
{
    unsigned spins = 0;
    uatomic_add(&sh->ready, 1);
    while (!uatomic_read(&sh->start))
        backoff(&spins);
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("write");
            _exit(3);
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Reads at least one whole message and at most max; returns the message count. Partial
 * messages are completed before returning, so the stream stays aligned. */
static uint32_t read_msgs(int fd, struct bench_msg *buf, uint32_t max)
{
    size_t got = 0, want = sizeof(*buf);
    while (got < want || got % sizeof(*buf) != 0) {
        ssize_t n = read(fd, (char *)buf + got, (size_t)max * sizeof(*buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("read");
            _exit(3);
        }
        got += (size_t)n;
    }
    return (uint32_t)(got / sizeof(*buf));
}

/* ---- one-way producers and consumers ---- */

static void oneway_producer(struct bench_shared *sh, enum bench_kind kind, uint64_t msgs)
{
    struct bench_msg m[BENCH_BATCH];
    memset(m, 0, sizeof(m));
    unsigned spins = 0;
    wait_start(sh);
    for (uint64_t seq = 0; seq < msgs;) {
        uint32_t n = msgs - seq < kind_batch(kind) ? (uint32_t)(msgs - seq) : kind_batch(kind);
        for (uint32_t i = 0; i < n; i++)
            m[i].seq = seq + i;
        uint32_t k = n;
        if (kind_is_spsc(kind))
            k = ipc_ring_push(sh->ring[0], m, n);
        else if (kind == BENCH_BCAST)
            k = ipc_bcast_publish(sh->bcast, m, n, 0);
        else
            for (uint32_t i = 0; i < n; i++)
                write_all(sh->fds[0][1], &m[i], sizeof(m[i]));
        if (k == 0)
            backoff(&spins);
        seq += k;
    }
}

static void oneway_consumer(struct bench_shared *sh, enum bench_kind kind, uint32_t c,
                            uint64_t msgs)
{
    struct bench_msg m[BENCH_STREAM_READ_MSGS];
    unsigned spins = 0;
    uint64_t next = 0, bad = 0;
    wait_start(sh);
    while (next < msgs) {
        uint32_t n;
        if (kind_is_spsc(kind)) {
            n = ipc_ring_pop(sh->ring[0], m, kind_batch(kind));
        } else if (kind == BENCH_BCAST) {
            struct ipc_bcast_read_result r = ipc_bcast_read(sh->bcast, c, m, BENCH_BATCH);
            bad += r.lagged;
            n = r.n;
        } else {
            n = read_msgs(sh->fds[0][0], m, BENCH_STREAM_READ_MSGS);
        }
        if (n == 0)
            backoff(&spins);
        for (uint32_t i = 0; i < n; i++)
            bad += m[i].seq != next++;
    }
    if (bad)
        uatomic_add(&sh->bad, bad);
}

/* ---- round trips ---- */

static void send_one(struct bench_shared *sh, enum bench_kind kind, int dir, uint32_t c,
                     const struct bench_msg *m)
{
    unsigned spins = 0;
    if (kind == BENCH_PIPE || kind == BENCH_SOCKET) {
        write_all(sh->fds[dir][1], m, sizeof(*m));
        return;
    }
    struct ipc_ring *r = sh->ring[dir == 0 ? 0 : c];
    while ((dir == 0 && kind == BENCH_BCAST ? ipc_bcast_publish(sh->bcast, m, 1, 0)
                                            : ipc_ring_push(r, m, 1)) == 0)
        backoff(&spins);
}

static void recv_one(struct bench_shared *sh, enum bench_kind kind, int dir, uint32_t c,
                     struct bench_msg *m)
{
    unsigned spins = 0;
    if (kind == BENCH_PIPE || kind == BENCH_SOCKET) {
        (void)read_msgs(sh->fds[dir][0], m, 1);
        return;
    }
    for (;;) {
        uint32_t n;
        if (dir == 0 && kind == BENCH_BCAST)
            n = ipc_bcast_read(sh->bcast, c, m, 1).n;
        else
            n = ipc_ring_pop(sh->ring[dir == 0 ? 0 : c], m, 1);
        if (n == 1)
            return;
        backoff(&spins);
    }
}

static void rtt_initiator(struct bench_shared *sh, enum bench_kind kind, uint64_t trips)
{
    struct bench_msg m = {0}, back;
    uint32_t answers = kind == BENCH_BCAST ? BENCH_CONSUMERS : 1;
    uint64_t bad = 0;
    wait_start(sh);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < trips; i++) {
        m.seq = i;
        send_one(sh, kind, 0, 0, &m);
        for (uint32_t c = 1; c <= answers; c++) {
            recv_one(sh, kind, 1, c, &back);
            bad += back.seq != i;
        }
    }
    uatomic_set(&sh->rtt_ns, now_ns() - t0);
    if (bad)
        uatomic_add(&sh->bad, bad);
}

static void rtt_responder(struct bench_shared *sh, enum bench_kind kind, uint32_t c, uint64_t trips)
{
    struct bench_msg m;
    wait_start(sh);
    for (uint64_t i = 0; i < trips; i++) {
        recv_one(sh, kind, 0, c, &m);
        send_one(sh, kind, 1, c, &m);
    }
}

/* ---- one run ---- */

static void setup_transport(struct bench_shared *sh, enum bench_kind kind)
{
    if (kind == BENCH_PIPE) {
        if (pipe(sh->fds[0]) != 0 || pipe(sh->fds[1]) != 0) {
            perror("pipe");
            exit(3);
        }
    } else if (kind == BENCH_SOCKET) {
        int a[2], b[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) != 0 ||
            socketpair(AF_UNIX, SOCK_STREAM, 0, b) != 0) {
            perror("socketpair");
            exit(3);
        }
        /* Each direction on its own pair keeps the fds[dir][0] = read end convention. */
        sh->fds[0][0] = a[0], sh->fds[0][1] = a[1];
        sh->fds[1][0] = b[0], sh->fds[1][1] = b[1];
    } else {
        for (uint32_t i = 0; i < BENCH_PROCS_MAX; i++)
            sh->ring[i] =
                ipc_ring_init(shared_alloc(ipc_ring_bytes(BENCH_RING_SLOTS)), BENCH_RING_SLOTS);
        uint64_t mask = ((UINT64_C(1) << (BENCH_CONSUMERS + 1)) - 1) & ~UINT64_C(1);
        sh->bcast =
            ipc_bcast_init(shared_alloc(ipc_bcast_bytes(BENCH_RING_SLOTS)), BENCH_RING_SLOTS, mask);
    }
}

static void teardown_transport(struct bench_shared *sh, enum bench_kind kind)
{
    if (kind == BENCH_PIPE || kind == BENCH_SOCKET) {
        for (int d = 0; d < 2; d++)
            for (int e = 0; e < 2; e++)
                (void)close(sh->fds[d][e]);
        return;
    }
    for (uint32_t i = 0; i < BENCH_PROCS_MAX; i++)
        (void)munmap(sh->ring[i], ipc_ring_bytes(BENCH_RING_SLOTS));
    (void)munmap(sh->bcast, ipc_bcast_bytes(BENCH_RING_SLOTS));
}

/* Runs one repetition; returns the elapsed nanoseconds (one-way) or the round-trip time per
 * trip in nanoseconds (rtt). Exits on any out-of-order message. */
static double run_once(enum bench_kind kind, bool rtt, uint64_t count)
{
    struct bench_shared *sh = shared_alloc(sizeof(*sh));
    memset(sh, 0, sizeof(*sh));
    setup_transport(sh, kind);
    uint32_t procs = kind == BENCH_BCAST ? BENCH_CONSUMERS + 1 : 2;
    pid_t pids[BENCH_PROCS_MAX];
    pid_t parent = getpid();
    for (uint32_t p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0) {
            perror("fork");
            exit(3);
        }
        if (pids[p] == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
                _exit(3);
            if (p == 0)
                rtt ? rtt_initiator(sh, kind, count) : oneway_producer(sh, kind, count);
            else
                rtt ? rtt_responder(sh, kind, p, count) : oneway_consumer(sh, kind, p, count);
            _exit(0);
        }
    }
    unsigned spins = 0;
    while (uatomic_read(&sh->ready) < procs)
        backoff(&spins);
    uint64_t t0 = now_ns();
    uatomic_set(&sh->start, 1);
    for (uint32_t p = 0; p < procs; p++) {
        int status = 0;
        if (waitpid(pids[p], &status, 0) != pids[p] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "ring: %s %s: a process failed\n", bench_names[kind],
                    rtt ? "round trip" : "one way");
            exit(3);
        }
    }
    uint64_t elapsed = now_ns() - t0;
    if (sh->bad != 0) {
        fprintf(stderr, "ring: %s: %llu messages out of order\n", bench_names[kind],
                (unsigned long long)sh->bad);
        exit(3);
    }
    double result = rtt ? (double)sh->rtt_ns / (double)count : (double)elapsed;
    teardown_transport(sh, kind);
    (void)munmap(sh, sizeof(*sh));
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[BENCH_REPS_MAX];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void run_kind(const struct bench_cfg *cfg, enum bench_kind kind, struct bench_result *r)
{
    for (int i = 0; i < cfg->reps; i++) {
        double ns = run_once(kind, false, cfg->oneway_msgs[kind]);
        r->msgs_per_s[i] = (double)cfg->oneway_msgs[kind] * 1e9 / ns;
        r->rtt_ns[i] = run_once(kind, true, cfg->trips[kind]);
    }
    r->msgs_per_s_median = median(r->msgs_per_s, cfg->reps);
    r->rtt_ns_median = median(r->rtt_ns, cfg->reps);
}

static void print_table(const struct bench_cfg *cfg, const struct bench_result *res)
{
    printf("64-byte messages, median of %d runs each\n", cfg->reps);
    printf("%-16s %14s %10s %10s %12s %10s\n", "transport", "msgs/s", "ns/msg", "vs spsc", "rtt ns",
           "vs spsc");
    for (int k = 0; k < BENCH_KINDS; k++) {
        const struct bench_result *r = &res[k];
        printf("%-16s %14.0f %10.1f %9.3fx %12.0f %9.2fx\n", bench_names[k], r->msgs_per_s_median,
               1e9 / r->msgs_per_s_median, r->msgs_per_s_median / res[BENCH_SPSC].msgs_per_s_median,
               r->rtt_ns_median, r->rtt_ns_median / res[BENCH_SPSC].rtt_ns_median);
    }
}

static void json_runs(FILE *f, const double *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.1f", i ? ", " : "", v[i]);
    fputc(']', f);
}

static int write_json(const char *path, const struct bench_cfg *cfg, const struct bench_result *res,
                      bool quick)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "ring: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"bench\": \"ring\",\n  \"msg_bytes\": %d,\n  \"reps\": %d,\n", IPC_SLOT_BYTES,
            cfg->reps);
    fprintf(f, "  \"quick\": %s,\n  \"transports\": [\n", quick ? "true" : "false");
    for (int k = 0; k < BENCH_KINDS; k++) {
        const struct bench_result *r = &res[k];
        fprintf(f, "    {\"name\": \"%s\", \"oneway_msgs\": %llu, \"msgs_per_s_runs\": ",
                bench_names[k], (unsigned long long)cfg->oneway_msgs[k]);
        json_runs(f, r->msgs_per_s, cfg->reps);
        fprintf(f,
                ", \"msgs_per_s_median\": %.1f, \"ns_per_msg_median\": %.2f, "
                "\"msgs_per_s_vs_spsc\": %.4f,\n     \"round_trips\": %llu, \"rtt_ns_runs\": ",
                r->msgs_per_s_median, 1e9 / r->msgs_per_s_median,
                r->msgs_per_s_median / res[BENCH_SPSC].msgs_per_s_median,
                (unsigned long long)cfg->trips[k]);
        json_runs(f, r->rtt_ns, cfg->reps);
        fprintf(f, ", \"rtt_ns_median\": %.1f, \"rtt_vs_spsc\": %.4f}%s\n", r->rtt_ns_median,
                r->rtt_ns_median / res[BENCH_SPSC].rtt_ns_median, k + 1 < BENCH_KINDS ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "ring: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ring [--quick] [--reps N] [--json FILE]\n"
            "  --quick      short run (fewer messages, 3 repetitions)\n"
            "  --reps N     repetitions per figure, 1..%d (default 5)\n"
            "  --json FILE  also write every figure as JSON to FILE\n",
            BENCH_REPS_MAX);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
                                         {"reps", required_argument, NULL, 'r'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool quick = false;
    int reps = 0;
    const char *json = NULL;
    for (int c; (c = getopt_long(argc, argv, "qr:j:h", opts, NULL)) != -1;) {
        if (c == 'q') {
            quick = true;
        } else if (c == 'r') {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > BENCH_REPS_MAX) {
                fprintf(stderr, "ring: --reps %s: expected 1..%d\n", optarg, BENCH_REPS_MAX);
                return 2;
            }
            reps = (int)v;
        } else if (c == 'j') {
            json = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    uint64_t div = quick ? 10 : 1;
    struct bench_cfg cfg = {
        .oneway_msgs = {20000000 / div, 20000000 / div, 2000000 / div, 500000 / div, 500000 / div},
        .trips = {200000 / div, 200000 / div, 10000 / div, 50000 / div, 50000 / div},
        .reps = reps ? reps : (quick ? 3 : 5),
    };
    struct bench_result res[BENCH_KINDS];
    memset(res, 0, sizeof(res));
    for (int k = 0; k < BENCH_KINDS; k++)
        run_kind(&cfg, (enum bench_kind)k, &res[k]);
    print_table(&cfg, res);
    if (json != NULL && write_json(json, &cfg, res, quick) != 0)
        return 3;
    return 0;
}
