/* big_state.c: a state machine whose snapshot is --bytes long (default 96 MiB) but which holds
 * only 8 bytes: its snapshot is a stream made up from its counter, and restore checks every byte
 * of that stream as it reads it. So a learner's peak memory (VmHWM) tells what the library
 * itself held while it wrote the snapshot into its store and read it back at a restart.
 *
 * Usage: big_state DIR [--bytes N] [--limit-mb M]
 * Runs a pool (3 nodes, the last a learner, sqlite in DIR) for 300 commands with a snapshot
 * every 128 entries, closes it, opens it again on DIR (the learner restores that snapshot from
 * its store) and runs 10 more. The learner writes its VmHWM (kB) after each snapshot into
 * DIR/hwm-snapshot.<pid> and after each restore into DIR/hwm-restore.<pid>. Exit 0 when both
 * runs verify with the right state, there was a snapshot and a restore, and every VmHWM stays
 * under --limit-mb (default: a third of --bytes); 1 otherwise. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <paxos-shm/paxos_shm.h>

#define CHUNK 65536u

struct big {
    uint64_t count;  /* the state: the sum of the commands */
    uint64_t bytes;  /* its snapshot's length */
    const char *dir; /* where restore writes its VmHWM */
};

/* The snapshot's byte at offset off for a count: the count's 8 bytes, then a xorshift stream. */
static void fill(uint8_t *p, uint64_t off, size_t n, uint64_t count)
{
    for (size_t i = 0; i < n; i++, off++) {
        if (off < 8) {
            p[i] = (uint8_t)(count >> (8 * off));
            continue;
        }
        uint64_t x = (off >> 3) * UINT64_C(0x9e3779b97f4a7c15) ^ count;
        x ^= x >> 31;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 29;
        p[i] = (uint8_t)(x >> (8 * (off & 7)));
    }
}

static long hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

/* DIR/hwm-<what>.<pid>: this process's VmHWM in kB. */
static int note_hwm(const struct big *b, const char *what)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/hwm-%s.%ld", b->dir, what, (long)getpid());
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fprintf(f, "%ld\n", hwm_kb());
    fclose(f);
    return 0;
}

static int apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                 size_t *result_len)
{
    struct big *b = ctx;
    uint64_t add = 0;
    (void)index;
    (void)result;
    (void)result_len;
    if (len != sizeof add)
        return 1;
    memcpy(&add, cmd, sizeof add);
    b->count += add;
    return 0;
}

static int snapshot(void *ctx, struct pxs_writer *w)
{
    struct big *b = ctx;
    static uint8_t chunk[CHUNK];
    for (uint64_t off = 0; off < b->bytes; off += CHUNK) {
        size_t n = b->bytes - off < CHUNK ? (size_t)(b->bytes - off) : CHUNK;
        fill(chunk, off, n, b->count);
        int rc = w->write(w, chunk, n);
        if (rc != 0)
            return rc;
    }
    return note_hwm(b, "snapshot");
}

static int restore(void *ctx, struct pxs_reader *r)
{
    struct big *b = ctx;
    static uint8_t got[CHUNK], want[CHUNK];
    uint64_t count = 0, off = 0;
    for (;;) {
        long n = r->read(r, got, CHUNK);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (long i = 0; i < n && off + (uint64_t)i < 8; i++)
            count |= (uint64_t)got[i] << (8 * (off + (uint64_t)i));
        /* the count is whole once the first 8 bytes are in (the reads are at least 8 long) */
        fill(want, off, (size_t)n, count);
        if (off + (uint64_t)n >= 8 && memcmp(got, want, (size_t)n) != 0)
            return -EBADMSG;
        off += (uint64_t)n;
    }
    if (off != b->bytes)
        return -EBADMSG;
    b->count = count;
    return note_hwm(b, "restore");
}

static uint64_t digest(void *ctx)
{
    return ((struct big *)ctx)->count;
}

static int run(struct big *b, struct pxs_state_machine *sm, uint64_t from, uint64_t commands,
               uint64_t *sum)
{
    struct pxs_config c;
    pxs_config_init(&c);
    c.quiet = 1;
    c.learners = 1;
    c.data_dir = b->dir;
    c.snapshot_log_entries = 128;
    c.timeout_s = 600;
    struct pxs_pool *pool;
    int rc = pxs_open(&c, sm, &pool);
    if (rc != 0) {
        fprintf(stderr, "big_state: pxs_open: %s\n", pxs_strerror(rc));
        return 1;
    }
    for (uint64_t add = from; add < from + commands; add++) {
        struct pxs_outcome o;
        rc = pxs_call(pool, &add, sizeof add, NULL, 0, &o);
        if (rc != 0 || o.status != 0) {
            fprintf(stderr, "big_state: command %" PRIu64 ": rc %d status %d\n", add, rc, o.status);
            pxs_close(pool, NULL);
            return 1;
        }
        *sum += add;
    }
    struct pxs_report rep;
    memset(&rep, 0, sizeof rep);
    rep.size = sizeof rep;
    rc = pxs_close(pool, &rep);
    if (rc != PXS_EXIT_VERIFIED || rep.learners_agree != rep.learners || rep.sm_digest != *sum) {
        fprintf(stderr,
                "big_state: pxs_close %d (%u of %u learners agree, state %" PRIu64
                ", expected %" PRIu64 ")\n",
                rc, rep.learners_agree, rep.learners, rep.sm_digest, *sum);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: big_state DIR [--bytes N] [--limit-mb M]\n");
        return 2;
    }
    struct big b = {.count = 0, .bytes = 96ull << 20, .dir = argv[1]};
    long limit_mb = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bytes") == 0)
            b.bytes = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--limit-mb") == 0)
            limit_mb = strtol(argv[i + 1], NULL, 10);
    }
    if (b.bytes < 8) {
        fprintf(stderr, "big_state: --bytes must be at least 8\n");
        return 2;
    }
    if (limit_mb == 0)
        limit_mb = (long)(b.bytes / 3 >> 20);
    struct pxs_state_machine sm = {.size = sizeof sm,
                                   .ctx = &b,
                                   .apply = apply,
                                   .snapshot = snapshot,
                                   .restore = restore,
                                   .digest = digest};
    uint64_t sum = 0;
    if (run(&b, &sm, 1, 300, &sum) != 0 || run(&b, &sm, 301, 10, &sum) != 0)
        return 1;
    /* every learner incarnation that restored said how much memory it ever held */
    DIR *d = opendir(b.dir);
    struct dirent *e;
    int restores = 0, snapshots = 0, over = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        bool is_restore = strncmp(e->d_name, "hwm-restore.", 12) == 0;
        if (!is_restore && strncmp(e->d_name, "hwm-snapshot.", 13) != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", b.dir, e->d_name);
        FILE *f = fopen(path, "r");
        long kb = -1;
        if (f == NULL || fscanf(f, "%ld", &kb) != 1)
            kb = -1;
        if (f != NULL)
            fclose(f);
        restores += is_restore;
        snapshots += !is_restore;
        printf("big_state: a learner %s %" PRIu64 " bytes with a peak of %ld kB\n",
               is_restore ? "restored" : "took a snapshot of", b.bytes, kb);
        if (kb < 0 || kb > limit_mb * 1024)
            over++;
    }
    if (d != NULL)
        closedir(d);
    printf("big_state: %" PRIu64 " commands, sum %" PRIu64
           ", %d snapshots and %d restores, %d over %ld MiB\n",
           (uint64_t)310, sum, snapshots, restores, over, limit_mb);
    return snapshots >= 1 && restores >= 1 && over == 0 ? 0 : 1;
}
