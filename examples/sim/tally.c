/* examples/sim/tally.c: a state machine to test in the simulator (paxos-shm/paxos_shm_sim.h):
 * 16 tallies; a command adds a hash of its bytes to the tally its first byte picks, and the
 * result is that tally's new value. Build it as a shared object and run the simulator on it:
 *
 *   cc -shared -fPIC -o tally.so tally.c $(pkg-config --cflags paxos-shm)
 *   paxos-shm-sim --sm-lib ./tally.so --seeds 1000
 *
 * Every node gets its own instance (the simulator runs all of them in one process): the state
 * lives in the instance's ctx, nothing in static variables. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <paxos-shm/paxos_shm_sim.h>

#define TALLIES 16

struct tally {
    uint64_t applied;        /* commands applied */
    uint64_t tally[TALLIES]; /* the state */
    uint64_t result;         /* the last result, valid until the next callback */
};

static uint64_t hash_bytes(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ len; /* FNV-1a, seeded with the length */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int tally_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                       size_t *result_len)
{
    struct tally *t = ctx;
    (void)index;
    if (len == 0)
        return 1; /* a status for the submitter: an empty command tallies nothing */
    const uint8_t *p = cmd;
    uint64_t *slot = &t->tally[p[0] % TALLIES];
    *slot += hash_bytes(p, len);
    t->applied++;
    t->result = *slot;
    *result = &t->result;
    *result_len = sizeof t->result;
    return 0;
}

static int tally_snapshot(void *ctx, struct pxs_writer *w)
{
    const struct tally *t = ctx;
    int rc = w->write(w, &t->applied, sizeof t->applied);
    return rc != 0 ? rc : w->write(w, t->tally, sizeof t->tally);
}

/* Reads exactly len bytes (the reader's chunks may differ from the writer's). */
static int read_all(struct pxs_reader *r, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        long n = r->read(r, (uint8_t *)buf + got, len - got);
        if (n <= 0)
            return n < 0 ? (int)n : -EBADMSG; /* the snapshot ended early */
        got += (size_t)n;
    }
    return 0;
}

static int tally_restore(void *ctx, struct pxs_reader *r)
{
    struct tally *t = ctx;
    int rc = read_all(r, &t->applied, sizeof t->applied);
    return rc != 0 ? rc : read_all(r, t->tally, sizeof t->tally);
}

static uint64_t tally_digest(void *ctx)
{
    const struct tally *t = ctx;
    uint64_t d = t->applied;
    for (int i = 0; i < TALLIES; i++)
        d = d * 0x9e3779b97f4a7c15ull + t->tally[i];
    return d;
}

int pxs_sim_state_machine(uint32_t node, struct pxs_state_machine *out)
{
    (void)node;
    struct tally *t = calloc(1, sizeof *t); /* a fresh, empty state for every incarnation */
    if (t == NULL)
        return -ENOMEM;
    *out = (struct pxs_state_machine){.size = sizeof *out,
                                      .ctx = t,
                                      .apply = tally_apply,
                                      .snapshot = tally_snapshot,
                                      .restore = tally_restore,
                                      .digest = tally_digest};
    return 0;
}

void pxs_sim_state_machine_free(uint32_t node, struct pxs_state_machine *sm)
{
    (void)node;
    free(sm->ctx);
}
