/* chaos.c: --chaos N SIGKILLs N nodes at seeded moments (counted in rounds decided), the leader
 * on the first kill and one in three afterwards, never leaving fewer than a majority of
 * acceptors up unless --chaos-any. The failure detector (membership.c) restarts the victims. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <urcu/system.h>

#include "common/log.h"
#include "common/pool.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Without --chaos-any an acceptor may die only if a majority of the acceptors stays up. */
static bool majority_after_kill(const struct cli_config *c, uint32_t up_acceptors)
{
    return up_acceptors - 1 >= c->acceptors / 2 + 1;
}

bool sup_chaos_cannot_kill(const struct cli_config *c)
{
    /* A node that is no acceptor may always die; acceptors are nodes 0..A-1 (cli_roles). */
    return !c->chaos_any && c->acceptors == c->nodes && !majority_after_kill(c, c->acceptors);
}

int sup_chaos_plan(struct sup *s)
{
    struct sup_chaos *ch = &s->chaos;
    uint32_t k = s->cfg->chaos_kills;
    ch->rng = s->cfg->seed ^ 0x5eed5eed5eed5eedull;
    if (k == 0)
        return 0;
    if (sup_chaos_cannot_kill(s->cfg))
        fprintf(stderr,
                "paxos-shm: --chaos %u: no kill can leave a majority of the %u acceptor%s up, so "
                "none will be made (--chaos-any allows them)\n",
                k, s->cfg->acceptors, s->cfg->acceptors == 1 ? "" : "s");
    ch->kill_at = calloc(k, sizeof(uint64_t));
    if (ch->kill_at == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < k; i++)
        ch->kill_at[i] = px_splitmix64(&ch->rng) % s->cfg->rounds;
    qsort(ch->kill_at, k, sizeof(uint64_t), cmp_u64);
    return 0;
}

void sup_chaos_free(struct sup *s)
{
    free(s->chaos.kill_at);
    s->chaos.kill_at = NULL;
}

/* Up, and not already dying: a node whose death was announced from its life lock but not yet
 * reaped counts neither as a victim nor as an acceptor that keeps the majority. */
static bool killable(const struct sup *s, uint16_t i)
{
    const struct sup_proc *p = &s->members.procs[i];
    return sup_up(s, i) && !p->killing && !p->gone;
}

/* Whether node i may be killed now: it is up, and without --chaos-any an acceptor dies only
 * if a majority of the acceptors stays up. */
static bool may_die(struct sup *s, uint16_t i, uint32_t up_acceptors)
{
    const struct cli_config *c = s->cfg;
    if (!killable(s, i))
        return false;
    return !sup_has_role(c, i, PX_ROLE_ACCEPTOR) || c->chaos_any ||
           majority_after_kill(c, up_acceptors);
}

/* Picks a victim, or -1 when the pick may not die now (tried again on the next step). */
static int chaos_victim(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    struct sup_chaos *ch = &s->chaos;
    uint32_t up_acceptors = 0;
    for (uint16_t i = 0; i < c->nodes; i++)
        if (killable(s, i) && sup_has_role(c, i, PX_ROLE_ACCEPTOR))
            up_acceptors++;
    uint16_t leader = sup_leader(s);
    uint16_t pick;
    if (leader != PX_NODE_NONE && (ch->next == 0 || px_splitmix64(&ch->rng) % 3 == 0)) {
        pick = leader;
        /* A leader that may not die (it is one of too few acceptors) must not block every kill
         * of the run: another node is drawn instead. */
        if (!may_die(s, pick, up_acceptors))
            pick = (uint16_t)(px_splitmix64(&ch->rng) % c->nodes);
    } else {
        pick = (uint16_t)(px_splitmix64(&ch->rng) % c->nodes);
    }
    return may_die(s, pick, up_acceptors) ? pick : -1;
}

void sup_chaos_step(struct sup *s)
{
    struct sup_chaos *ch = &s->chaos;
    while (ch->kill_at && ch->next < s->cfg->chaos_kills &&
           s->drive.client->done >= ch->kill_at[ch->next]) {
        int v = chaos_victim(s);
        if (v < 0)
            return;
        struct sup_proc *p = &s->members.procs[v];
        bool was_leader = CMM_LOAD_SHARED(sup_node_shared(s, (uint16_t)v)->is_leader) != 0;
        LOG(LOG_INFO, "chaos: SIGKILL node %d%s", v, was_leader ? " (leader)" : "");
        if (kill(p->pid, SIGKILL) != 0)
            return;
        p->killing = true;
        ch->kills++;
        if (was_leader)
            ch->leader_kills++;
        ch->next++;
    }
}
