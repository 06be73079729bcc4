/* sm_broken.c: state machines with a planted bug, for px_sim --sm-lib (paxos-shm/paxos_shm_sim.h):
 * the simulator must catch each one (ctest sim_sm_lib_catches_*). A map of 8 slots, each a
 * hash chain of the commands its first byte picks, and a count.
 *   SM_BUG_RESTORE_DROPS  restore reads the whole snapshot but keeps only the first 4 slots:
 *                         a learner that restored a snapshot (a restart, a catch-up) differs.
 *   SM_BUG_APPLY_STATIC   apply mixes in a counter kept in a static variable, which every node
 *                         of the simulator shares (and a real pool's processes would not):
 *                         apply is not a function of the state and the command.
 *   SM_NO_DIGEST          (with a bug) no digest callback: the simulator compares the learners'
 *                         snapshot bytes instead.
 *   SM_FACTORY_FAILS      pxs_sim_state_machine returns -ENOSYS: the simulator stops, exit 2. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paxos-shm/paxos_shm_sim.h"

#define SLOTS 8

struct map {
    uint64_t count;
    uint64_t slot[SLOTS];
};

static int map_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                     size_t *result_len)
{
    struct map *m = ctx;
    const uint8_t *p = cmd;
    uint64_t h = 0xcbf29ce484222325ull ^ index;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
#ifdef SM_BUG_APPLY_STATIC
    static uint64_t calls;
    h += ++calls;
#endif
    m->slot[len > 0 ? p[0] % SLOTS : 0] ^= h;
    m->count++;
    *result = NULL;
    *result_len = 0;
    return 0;
}

static int map_snapshot(void *ctx, struct pxs_writer *w)
{
    return w->write(w, ctx, sizeof(struct map));
}

static int map_restore(void *ctx, struct pxs_reader *r)
{
    struct map got;
    for (size_t have = 0; have < sizeof got;) {
        long n = r->read(r, (uint8_t *)&got + have, sizeof got - have);
        if (n <= 0)
            return n < 0 ? (int)n : -EBADMSG;
        have += (size_t)n;
    }
#ifdef SM_BUG_RESTORE_DROPS
    memset(&got.slot[SLOTS / 2], 0, sizeof(got.slot[0]) * (SLOTS / 2));
#endif
    memcpy(ctx, &got, sizeof got);
    return 0;
}

#ifndef SM_NO_DIGEST
static uint64_t map_digest(void *ctx)
{
    const struct map *m = ctx;
    uint64_t d = m->count;
    for (int i = 0; i < SLOTS; i++)
        d = d * 0x9e3779b97f4a7c15ull + m->slot[i];
    return d;
}
#endif

int pxs_sim_state_machine(uint32_t node, struct pxs_state_machine *out)
{
    (void)node;
#ifdef SM_FACTORY_FAILS
    return -ENOSYS;
#endif
    struct map *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    *out = (struct pxs_state_machine){.size = sizeof *out,
                                      .ctx = m,
                                      .apply = map_apply,
                                      .snapshot = map_snapshot,
                                      .restore = map_restore};
#ifndef SM_NO_DIGEST
    out->digest = map_digest;
#endif
    return 0;
}

void pxs_sim_state_machine_free(uint32_t node, struct pxs_state_machine *sm)
{
    (void)node;
    free(sm->ctx);
}
