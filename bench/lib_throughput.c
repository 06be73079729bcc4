/* bench/lib_throughput: commands per second through the public API (include/paxos-shm), a
 * counter state machine on a pool, for each command length asked:
 *   lib_throughput [--nodes N] [--commands C] [--window W] [--bytes B,B,...] [--state-bytes S]
 *                  [--store sqlite,shm]
 * One line per store and length: commands/s, MB/s of commands, and whether the pool verified.
 * --store: the stores to run, each length on each in turn (default sqlite).
 * --state-bytes S: the counter also holds S bytes that its snapshots write and its restores
 * read, so that the cost of snapshots to a state of that size shows in the figure. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <paxos-shm/paxos_shm.h>

struct counter {
    uint64_t total, out;
    uint8_t *ballast; /* --state-bytes of it, written by every snapshot */
    size_t ballast_len;
};

#define CHUNK (64u << 10)

static int apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                 size_t *result_len)
{
    struct counter *c = ctx;
    uint64_t add = 0;
    (void)index;
    memcpy(&add, cmd, len < sizeof(add) ? len : sizeof(add));
    c->total += add;
    c->out = c->total;
    *result = &c->out;
    *result_len = sizeof(c->out);
    return 0;
}

static int snapshot(void *ctx, struct pxs_writer *w)
{
    struct counter *c = ctx;
    int rc = w->write(w, &c->total, sizeof(uint64_t));
    for (size_t off = 0; rc == 0 && off < c->ballast_len; off += CHUNK)
        rc = w->write(w, c->ballast + off,
                      c->ballast_len - off < CHUNK ? c->ballast_len - off : CHUNK);
    return rc;
}

static int restore(void *ctx, struct pxs_reader *r)
{
    struct counter *c = ctx;
    if (r->read(r, &c->total, sizeof(c->total)) != (long)sizeof(c->total))
        return -EPROTO;
    for (size_t off = 0; off < c->ballast_len;) {
        size_t want = c->ballast_len - off < CHUNK ? c->ballast_len - off : CHUNK;
        long n = r->read(r, c->ballast + off, want);
        if (n <= 0)
            return n < 0 ? (int)n : -EPROTO;
        off += (size_t)n;
    }
    return 0;
}

static uint64_t digest(void *ctx)
{
    return ((struct counter *)ctx)->total;
}

static uint64_t done, bad;

static void on_done(void *arg, const struct pxs_outcome *o)
{
    (void)arg;
    done++;
    bad += o->err != 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One pool, `commands` commands of `bytes` each. Returns pxs_close's code. */
static int run(uint32_t nodes, uint32_t window, uint64_t commands, uint32_t bytes,
               size_t state_bytes, enum pxs_store store)
{
    static struct counter state;
    free(state.ballast);
    state.ballast = state_bytes ? calloc(1, state_bytes) : NULL;
    state.ballast_len = state.ballast ? state_bytes : 0;
    struct pxs_state_machine sm = {.size = sizeof(sm),
                                   .ctx = &state,
                                   .apply = apply,
                                   .snapshot = snapshot,
                                   .restore = restore,
                                   .digest = digest};
    struct pxs_config c;
    pxs_config_init(&c);
    c.nodes = nodes;
    c.window = window;
    c.command_max = bytes;
    c.store = store;
    if (store == PXS_STORE_SHM && state_bytes > 0)
        c.shm_state_max = state_bytes + 64; /* the counter's total and a margin */
    c.quiet = 1;
    struct pxs_pool *p;
    int rc = pxs_open(&c, &sm, &p);
    if (rc != 0) {
        fprintf(stderr, "lib_throughput: pxs_open: %s\n", pxs_strerror(rc));
        return PXS_EXIT_RUNTIME;
    }
    uint8_t *cmd = calloc(1, bytes > 0 ? bytes : 1);
    if (cmd == NULL)
        return PXS_EXIT_RUNTIME;
    cmd[0] = 1;
    done = bad = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < commands;) {
        rc = pxs_submit(p, cmd, bytes, on_done, NULL);
        if (rc == 0)
            i++;
        else if (rc != -EAGAIN || pxs_poll(p, 100) < 0)
            break;
    }
    while (done < commands && pxs_poll(p, 100) >= 0)
        ;
    double secs = now_s() - t0;
    struct pxs_report r = {.size = sizeof(r)};
    int code = pxs_close(p, &r);
    free(cmd);
    printf("%u nodes  %-6s  %8u B  state %9zu B  %10.0f commands/s  %8.1f MB/s  %s\n", nodes,
           store == PXS_STORE_SHM ? "shm" : "sqlite", bytes, state.ballast_len, (double)done / secs,
           (double)done * bytes / secs / 1e6,
           code == PXS_EXIT_VERIFIED && bad == 0 && done == commands ? "VERIFIED" : "FAILED");
    return code;
}

int main(int argc, char **argv)
{
    uint32_t nodes = 3, window = 64;
    uint64_t commands = 20000;
    const char *sizes = "8,256,4096";
    const char *stores = "sqlite";
    size_t state_bytes = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nodes") == 0)
            nodes = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--commands") == 0)
            commands = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--window") == 0)
            window = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--bytes") == 0)
            sizes = argv[i + 1];
        else if (strcmp(argv[i], "--state-bytes") == 0)
            state_bytes = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--store") == 0)
            stores = argv[i + 1];
        else {
            fprintf(stderr, "usage: lib_throughput [--nodes N] [--commands C] [--window W] "
                            "[--bytes B,B,...] [--state-bytes S] [--store sqlite,shm]\n");
            return PXS_EXIT_USAGE;
        }
    }
    enum pxs_store kinds[2];
    int nkinds = 0;
    bool shm = strstr(stores, "shm") != NULL, sqlite = strstr(stores, "sqlite") != NULL;
    if (!shm && !sqlite) {
        fprintf(stderr, "lib_throughput: --store: sqlite, shm or both\n");
        return PXS_EXIT_USAGE;
    }
    if (sqlite)
        kinds[nkinds++] = PXS_STORE_SQLITE;
    if (shm)
        kinds[nkinds++] = PXS_STORE_SHM;
    int worst = 0;
    char *list = strdup(sizes);
    for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ","))
        for (int k = 0; k < nkinds; k++) {
            int code = run(nodes, window, commands, (uint32_t)strtoul(tok, NULL, 10), state_bytes,
                           kinds[k]);
            worst = code > worst ? code : worst;
        }
    free(list);
    return worst;
}
