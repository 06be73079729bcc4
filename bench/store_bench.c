/* store_bench: records per second the store backends persist, by batch size.
 *
 * A batch is what the node loop commits per drain of its rings: `batch` log records (ACCEPTED
 * and DECIDED of successive instances, as an acceptor-learner writes them), one TRUNCATE that
 * keeps the live log at BENCH_LOG_KEEP instances, one fib snapshot, one commit. Each
 * configuration runs for BENCH_SECONDS or BENCH_RECORDS_MAX records, whichever comes first.
 *
 * Usage: store_bench [data-dir [backend]]  data-dir "" or absent: a fresh directory under
 * $TMPDIR or /tmp, removed afterwards; backend: only sqlite-normal, sqlite-full or shm. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define BENCH_SECONDS     1.5      /* per configuration: long enough for many checkpoints */
#define BENCH_RECORDS_MAX 50000000 /* stops the fast configurations early */
#define BENCH_LOG_KEEP    4096     /* live instances behind the newest: the core's log bound */
#define BENCH_SHM_ENTRIES 8192     /* > BENCH_LOG_KEEP + one batch of instances */

struct bench_cfg {
    const char *name;
    enum store_kind kind;
    enum store_sync sync;
};

static double bench_clock(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) {
        perror("clock_gettime");
        exit(3);
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall time, and this process's CPU time: the machine is shared, so the CPU figure shows the
 * cost per record without the other processes' share. */
static double bench_now(void)
{
    return bench_clock(CLOCK_MONOTONIC);
}

static double bench_cpu(void)
{
    return bench_clock(CLOCK_PROCESS_CPUTIME_ID);
}

static void bench_check(struct store *s, int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "store_bench: %s: %s\n", what, store_errmsg(s));
        exit(3);
    }
}

/* Writes one batch of `batch` records starting at instance *next; returns records written. */
static uint64_t bench_batch(struct store *s, uint32_t batch, px_inst_t *next, struct px_history *f)
{
    struct px_rec r;
    memset(&r, 0, sizeof(r));
    bench_check(s, store_begin(s), "begin");
    for (uint32_t i = 0; i < batch; i++) {
        px_inst_t inst = *next + i / 2;
        r.type = i % 2 == 0 ? PX_REC_ACCEPTED : PX_REC_DECIDED;
        r.instance = inst;
        r.ballot = r.type == PX_REC_ACCEPTED ? px_ballot_make(3, 1) : 0;
        r.value = (struct px_value){inst * 2654435761u, 1, (uint32_t)inst};
        bench_check(s, store_put(s, &r), "put");
    }
    *next += (batch + 1) / 2;
    if (*next > BENCH_LOG_KEEP) {
        memset(&r, 0, sizeof(r));
        r.type = PX_REC_TRUNCATE;
        r.instance = *next - BENCH_LOG_KEEP;
        bench_check(s, store_put(s, &r), "truncate");
    }
    f->applied = *next - 1;
    f->digest += f->applied; /* the batch's history changes, as a learner's would */
    bench_check(s, store_put_fib(s, f), "put_fib");
    bench_check(s, store_commit(s), "commit");
    return batch;
}

static void bench_run(const struct bench_cfg *c, const char *dir, void *area, size_t area_bytes,
                      uint32_t batch)
{
    struct store_params p = {.kind = c->kind,
                             .dir = dir,
                             .node_id = 0,
                             .nodes = 1,
                             .sync = c->sync,
                             .shm_area = area,
                             .shm_bytes = area_bytes};
    struct store *s = NULL;
    char err[STORE_ERR_MAX];
    char path[512];
    snprintf(path, sizeof(path), "%s/node-0.db", dir);
    unlink(path); /* every configuration starts from an empty store */
    memset(area, 0, area_bytes);
    if (store_open(&p, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(3);
    }
    struct px_history f;
    memset(&f, 0, sizeof(f));
    px_inst_t next = 1;
    uint64_t records = 0, batches = 0;
    double t0 = bench_now(), t = t0, cpu0 = bench_cpu();
    while (t - t0 < BENCH_SECONDS && records < BENCH_RECORDS_MAX) {
        records += bench_batch(s, batch, &next, &f);
        batches++;
        t = bench_now();
    }
    double cpu = bench_cpu() - cpu0;
    store_close(s);
    double secs = t - t0;
    printf("%-14s %6u %10llu %8.2f %12.0f %12.0f %12.1f\n", c->name, batch,
           (unsigned long long)records, secs, (double)records / secs, (double)records / cpu,
           secs * 1e6 / (double)batches);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct bench_cfg cfgs[] = {
        {"sqlite-normal", STORE_SQLITE, STORE_SYNC_NORMAL},
        {"sqlite-full", STORE_SQLITE, STORE_SYNC_FULL},
        {"shm", STORE_SHM, STORE_SYNC_NORMAL},
    };
    static const uint32_t batches[] = {1, 64, 1024};
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    const char *only = argc > 2 ? argv[2] : NULL;
    if (argc > 1 && argv[1][0] != '\0') {
        snprintf(dir, sizeof(dir), "%s", argv[1]);
    } else {
        snprintf(dir, sizeof(dir), "%s/store-bench-XXXXXX", tmp != NULL ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("store_bench: mkdtemp");
            return 3;
        }
    }
    size_t area_bytes = store_shm_bytes(BENCH_SHM_ENTRIES);
    void *area = aligned_alloc(64, area_bytes);
    if (area == NULL) {
        perror("store_bench: aligned_alloc");
        return 3;
    }
    printf("store_bench: dir %s, %.1f s per configuration\n", dir, BENCH_SECONDS);
    printf("%-14s %6s %10s %8s %12s %12s %12s\n", "backend", "batch", "records", "seconds",
           "records/s", "rec/cpu-s", "us/commit");
    for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
        if (only != NULL && strcmp(only, cfgs[c].name) != 0)
            continue;
        for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++)
            bench_run(&cfgs[c], dir, area, area_bytes, batches[b]);
    }
    free(area);
    if (argc <= 1 || argv[1][0] == '\0') {
        char path[512];
        snprintf(path, sizeof(path), "%s/node-0.db", dir);
        unlink(path);
        if (rmdir(dir) != 0)
            perror("store_bench: rmdir");
    }
    return 0;
}
