/* sim_client.c: the supervisor's client (src/supervisor/client.c, the same code) as the
 * simulator's client, in the seeds that draw it (sim_cc_draw). It runs twice, like two runs
 * of paxos-shm on one data directory:
 *   1. the first run submits its rounds under a durable high-water mark (client_hwm_wanted /
 *      client_hwm_durable: the record's `submitted`); at a drawn tick of the chaos phase the
 *      client crashes: its memory is gone, only the record survives (decided prefix and mark
 *      as of its last write). A first run that finishes before writes its record at the end.
 *   2. the continued run starts from the record (client_resume_of): it resolves the rounds in
 *      doubt first (client_resolve_init: same identities, same increments), records them
 *      (client_record_take), then submits its own rounds above the record's mark.
 * The checker then asserts what the continued client expects, from its own record and
 * nothing the pool says: every learner applied base + rounds requests, the agreed log up to
 * its applied index feeds the Fibonacci state machine F(base + rounds + 1) (the core holds no
 * value: the checker computes it from the chosen log, whose digest the learner's history must
 * match, sim_check_final), and its exactly-once table holds exactly the global rounds
 * 1..base + rounds (violation `client`).
 *
 * Global round g is the simulator's round g (clients = CLIENT_IDS gives both the same
 * (client id, seq) and increment F(g - 1)), so the validity and exactly-once checks of the
 * simulator hold unchanged. Virtual time: one tick is CLIENT_RESUBMIT_NS / resubmit_ticks
 * nanoseconds of the client's clock, so it resubmits after the simulator's own timeout.
 */
#include "sim.h"

#include <string.h>

/* Share of the seeds whose client is the supervisor's, crashed and continued; of them, the
 * share whose first run is killed (the others end cleanly and continue). */
#define SIM_CC_SEEDS       0.15
#define SIM_CC_CRASH_SHARE 0.8
/* Ticks a round of the first run takes, roughly (one to a few round trips, window 1..8): the
 * span over which its crash is drawn. */
#define SIM_CC_TICKS_PER_ROUND 5u
/* Overdue requests resubmitted per tick (drive.c resubmits SUP_RESUBMIT_MAX per check). */
#define SIM_CC_RESUBMIT_MAX 64u

static uint64_t sim_cc_now_ns(const struct sim *s)
{
    return s->now * s->cc.ns_per_tick;
}

static void sim_cc_trace(struct sim *s, const char *what)
{
    const struct client *c = &s->cc.cl;
    if (s->trace)
        fprintf(s->out,
                "t=%llu client %s: base %llu, rounds %llu; record decided %llu, submitted %llu\n",
                (unsigned long long)s->now, what, (unsigned long long)c->base,
                (unsigned long long)c->rounds, (unsigned long long)s->cc.rec.decided,
                (unsigned long long)s->cc.rec.submitted);
}

bool sim_cc_draw(struct sim *s, uint64_t chaos_ticks, bool crash)
{
    struct sim_cc *cc = &s->cc;
    struct sim_rng r = {s->opt.seed ^ 0x636c69656e742e2eull};
    uint32_t rounds = s->rounds, window = s->window;
    if (rounds < 2 || rounds > CLIENT_HWM_CHUNK || !sim_rng_chance(&r, SIM_CC_SEEDS))
        return false;
    memset(cc, 0, sizeof(*cc));
    cc->on = true;
    cc->window = window;
    cc->rounds_first = 1 + (uint32_t)sim_rng_below(&r, rounds - 1);
    cc->rounds_next = rounds - cc->rounds_first;
    /* Within the first run's likely span (a few ticks per round), where it has rounds in
     * flight, and within the chaos phase. */
    uint64_t horizon = 20 + SIM_CC_TICKS_PER_ROUND * (uint64_t)cc->rounds_first;
    if (sim_rng_chance(&r, SIM_CC_CRASH_SHARE) && crash)
        cc->crash_at = 1 + sim_rng_below(&r, horizon < chaos_ticks ? horizon : chaos_ticks);
    cc->ns_per_tick = CLIENT_RESUBMIT_NS / s->resubmit_ticks;
    /* Global round g is round g of the simulator: (client id, seq) as client.c numbers them. */
    memset(s->seq_round, 0, sizeof(s->seq_round));
    sim_set_rounds(s, rounds, CLIENT_IDS, window);
    client_init(&cc->cl, cc->rounds_first, window, 0);
    cc->phase = SIM_CC_FIRST;
    sim_cc_trace(s, "starts");
    return true;
}

/* The second run: from the record alone, the rounds in doubt first. */
static void sim_cc_continue(struct sim *s)
{
    struct sim_cc *cc = &s->cc;
    cc->from = client_resume_of(&cc->rec);
#ifdef PX_SIM_BUG_CLIENT_FORGETS_IN_DOUBT
    bool resolving = false; /* planted bug: the rounds in doubt are never resolved */
#else
    bool resolving = client_resolve_init(&cc->cl, &cc->from, cc->window);
#endif
    if (resolving) {
        cc->phase = SIM_CC_RESOLVE;
        sim_cc_trace(s, "resolves the rounds in doubt");
        return;
    }
    client_init(&cc->cl, cc->rounds_next, cc->window, cc->from.base);
    cc->phase = SIM_CC_NEXT;
    sim_cc_trace(s, "continues");
}

/* The client process dies: nothing but the record survives. */
static void sim_cc_crash(struct sim *s)
{
    struct sim_cc *cc = &s->cc;
    sim_cc_trace(s, "crashes");
    memset(&cc->cl, 0xa5, sizeof(cc->cl));
    cc->crashes++;
    s->faults[SIM_F_CLIENT_CRASH]++;
    sim_cc_continue(s);
}

/* A run that finished records what it knows (sup_record_end, sup_record_resolved). */
static void sim_cc_finish(struct sim *s)
{
    struct sim_cc *cc = &s->cc;
    client_record_take(&cc->rec, &cc->cl);
    if (cc->phase == SIM_CC_FIRST) {
        sim_cc_trace(s, "ends");
        sim_cc_continue(s);
    } else if (cc->phase == SIM_CC_RESOLVE) {
        client_init(&cc->cl, cc->rounds_next, cc->window, cc->from.base);
        cc->phase = SIM_CC_NEXT;
        sim_cc_trace(s, "resolved; continues");
    } else {
        cc->phase = SIM_CC_DONE;
        sim_cc_trace(s, "ends");
    }
}

static void sim_cc_submit(struct sim *s, const struct px_value *v)
{
    uint32_t g = (uint32_t)((uint64_t)(v->seq - 1) * CLIENT_IDS + v->client_id);
    PX_ASSERT(g >= 1 && g <= s->rounds);
    PX_ASSERT(s->req[g].increment == v->word);
    if (g > s->submitted)
        s->submitted = g;
    sim_submit_round(s, g, -1);
}

/* One tick of the client: a crash at its tick, a durable mark before it submits beyond the
 * last one, new rounds, overdue resubmissions, the end of a run. */
void sim_cc_step(struct sim *s)
{
    struct sim_cc *cc = &s->cc;
    if (cc->phase == SIM_CC_DONE)
        return;
    if (cc->phase == SIM_CC_FIRST && cc->crash_at != 0 && s->now >= cc->crash_at)
        sim_cc_crash(s);
    uint64_t now = sim_cc_now_ns(s);
    uint64_t hwm = client_hwm_wanted(&cc->cl);
    if (hwm != 0) { /* the record is written first: sup_record_hwm */
        client_record_take(&cc->rec, &cc->cl);
        cc->rec.submitted = hwm;
        client_hwm_durable(&cc->cl, hwm);
    }
    struct px_value v;
    while (client_next(&cc->cl, now, &v))
        sim_cc_submit(s, &v);
    struct px_value again[SIM_CC_RESUBMIT_MAX];
    uint32_t k = client_overdue(&cc->cl, now, again, SIM_CC_RESUBMIT_MAX);
    for (uint32_t i = 0; i < k; i++)
        sim_cc_submit(s, &again[i]);
    if (client_finished(&cc->cl))
        sim_cc_finish(s);
}

void sim_cc_receive(struct sim *s, const struct px_msg *m)
{
    struct sim_cc *cc = &s->cc;
    if (m->instance > cc->replied_max)
        cc->replied_max = m->instance;
    if (cc->phase != SIM_CC_DONE)
        (void)client_decided(&cc->cl, &m->u.client_reply.value, m->instance, sim_cc_now_ns(s));
}

bool sim_cc_done(const struct sim *s)
{
    return s->cc.phase == SIM_CC_DONE;
}

/* The continued client's expectation, from its record only, against what every learner
 * holds. */
void sim_cc_check_final(struct sim *s)
{
    const struct client *c = &s->cc.cl;
    uint64_t g = c->base + c->rounds;
    uint64_t want = client_fib(g + 1);
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER) || (s->node[j].forgot && !s->node[j].up))
            continue;
        const struct px_history *f = px_node_history(s->node[j].px);
        enum client_table t = client_table_check(f, g);
        uint64_t value = 0, requests = 0, digest = 0;
        bool known = sim_ref_at(s, f->applied, &value, &requests, &digest);
        if (!known || value != want || f->requests != g || t != CLIENT_TABLE_AGREES)
            sim_violate(s, SIM_V_CLIENT,
                        "the continued client expects F(%llu) = %llu and global rounds 1..%llu "
                        "(base %llu, %llu in doubt); node %u applied %llu requests, where the "
                        "agreed log gives %llu%s, its table %s",
                        (unsigned long long)(g + 1), (unsigned long long)want,
                        (unsigned long long)g, (unsigned long long)c->base,
                        (unsigned long long)s->cc.from.in_doubt, j, (unsigned long long)f->requests,
                        (unsigned long long)value, known ? "" : " (not all chosen)",
                        t == CLIENT_TABLE_AGREES    ? "agrees"
                        : t == CLIENT_TABLE_MISSING ? "misses a round"
                                                    : "holds a round never submitted");
    }
}
