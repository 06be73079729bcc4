/* examples/counter/counter.c: the smallest complete state machine over libpaxos-shm: a counter
 * every command adds its 8 bytes to (little-endian), replicated on a pool of 3 processes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <paxos-shm/paxos_shm.h>

static int apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                 size_t *result_len)
{
    uint64_t *count = ctx, add = 0;
    (void)index;
    if (len != sizeof add)
        return 1; /* a status for the submitter: not a counter command */
    memcpy(&add, cmd, sizeof add);
    *count += add;
    *result = count; /* the new count goes back to the submitter */
    *result_len = sizeof *count;
    return 0;
}

static int snapshot(void *ctx, struct pxs_writer *w)
{
    return w->write(w, ctx, sizeof(uint64_t));
}

static int restore(void *ctx, struct pxs_reader *r)
{
    uint8_t *p = ctx;
    for (size_t got = 0; got < sizeof(uint64_t);) {
        long n = r->read(r, p + got, sizeof(uint64_t) - got);
        if (n <= 0)
            return n < 0 ? (int)n : -EIO; /* the snapshot ended early */
        got += (size_t)n;
    }
    return 0;
}

int main(void)
{
    uint64_t count = 0, total = 0; /* each node process has its own copy of count */
    struct pxs_state_machine sm = {
        .size = sizeof sm, .ctx = &count, .apply = apply, .snapshot = snapshot, .restore = restore};
    struct pxs_config c;
    pxs_config_init(&c);
    c.quiet = 1;
    struct pxs_pool *pool;
    int rc = pxs_open(&c, &sm, &pool);
    if (rc != 0) {
        fprintf(stderr, "counter: %s\n", pxs_strerror(rc));
        return PXS_EXIT_RUNTIME;
    }
    for (uint64_t add = 1; add <= 1000; add++) {
        struct pxs_outcome o;
        rc = pxs_call(pool, &add, sizeof add, &total, sizeof total, &o);
        if (rc != 0 || (o.status != 0 && !o.result_lost)) /* lost: applied, count unseen */
            break;
    }
    rc = pxs_close(pool, NULL);
    printf("counter: %llu (expected 500500), pxs_close %d\n", (unsigned long long)total, rc);
    return rc == PXS_EXIT_VERIFIED && total == 500500 ? 0 : 1;
}
