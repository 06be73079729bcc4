/* px_sim.c: the deterministic simulator's command line and its random fault driver.
 *
 *   px_sim --seed S [--trace]            one seed; a failure prints the line that replays it
 *   px_sim --seeds N [--from S]          soak: N seeds, then faults injected by kind and seconds
 *   px_sim --seeds N --expect-violation KIND
 *                                        exit 0 only if some seed violates KIND (planted bugs)
 *   px_sim --script FILE [--trace]       replay a scenario script (scenarios/NAME.txt), compare
 *                                        its golden trace (after `-- expect --`)
 *   px_sim --script FILE --rewrite       ... and write the run's trace there instead
 *   ... --cmd-sizes | --cmd-bytes MIN:MAX  with seeds: long commands (sim_cmd.c), every applied
 *                                        byte checked (violation `command`)
 *   ... --sm                             every learner runs a tiny state machine through the
 *                                        driver (node/sm.h); the end check compares them
 *   ... --sm-lib PATH                    the same with the user's state machine, loaded from a
 *                                        shared object (paxos-shm/paxos_shm_sim.h)
 *
 * Each seed draws its own pool (3..7 nodes, roles, window, rotation, batching) and its own
 * fault mix (drop, duplicate, reorder, delay, partitions, crashes at any point of a batch,
 * lagging nodes, hung consumers, tiny rings; in some seeds the supervisor's client, killed
 * and continued: sim_client.c), runs a chaos phase, heals everything and then demands liveness and
 * one final state on every learner: R requests and the digest of the agreed log, whose
 * Fibonacci value is F(R+1) mod 2^64.
 */
#include "sim.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Ticks a healed pool gets to finish: generous against election back-off and catch-up, yet a
 * hung run still ends in well under a second. */
#define SIM_LIVE_TICKS_BASE      3000u
#define SIM_LIVE_TICKS_PER_ROUND 50u
/* Long commands (--cmd-sizes, --cmd-bytes): a link moves about one ring of DATA chunks per
 * tick, so a seed with tiny rings needs time for its bytes too: this many ticks per chunk of
 * its commands (one stream each) per slot of its smallest ring. With the default 4096-slot
 * rings that is a few ticks; with 8-slot rings and megabytes of commands, thousands. */
#define SIM_LIVE_TICKS_PER_CHUNK_SLOT 4u
/* The work a seed may do, besides its virtual time (a tick's cost grows with what is in flight,
 * so a bound on ticks alone let a livelocked seed run for hours). Every message costs its
 * receiver at most one core step, so bounding messages bounds steps too:
 *   - messages sent: at most SIM_WORK_MSGS_PER_NODE_TICK per node per tick of the seed's time
 *     bound (the most of 20,000 soak seeds was 0.75, see tests/sim/README.md);
 *   - backlog (delivered, not yet stepped, all nodes): at most SIM_BACKLOG_MAX, four full
 *     promise streams (PX_LOG_MAX entries) from every acceptor of the largest pool; beyond it
 *     the pool is fed faster than it steps, and each tick costs more than the last.
 * Past either bound the seed reports a liveness violation with its replay line. */
#define SIM_WORK_MSGS_PER_NODE_TICK 2u
#define SIM_BACKLOG_MAX             (4u * PX_LOG_MAX * SIM_NODES_MAX)
/* DATA messages (a command's stream, sent ahead of its value: once per link, again to a peer
 * that asks) are bounded on their own, beside the bound on the rest: this many per chunk of the
 * seed's commands (one stream each) per other node, plus the bound on the other messages (a
 * WANT is a DATA message). The most of the soak was about 100 (tests/sim/README.md). */
#define SIM_WORK_DATA_PER_CHUNK_NODE 1024u
/* Share of seeds that run past PX_LOG_MAX instances (ring wrap-around, truncation, snapshots
 * at scale); each costs about as much as a hundred short seeds. */
#define SIM_LONG_SEEDS 0.02

struct sim_run_opts {
    uint32_t nodes, rounds; /* 0 = drawn from the seed */
    bool trace;
    bool role_changes;        /* also move proposer/learner roles during the chaos phase */
    bool amnesia;             /* also lose one acceptor's store while it is down (sim_forget) */
    bool no_faults;           /* a clean run: same pool and load, nothing injected */
    bool cmd_sizes;           /* long commands: each seed draws its longest (sim_draw_cmds) */
    bool sm;                  /* every learner runs a state machine (sim.h: sm_on) */
    struct sim_sm_lib sm_lib; /* --sm-lib: the user's (path NULL: the tiny built-in one) */
    struct sim_cmds cmds;     /* --cmd-bytes MIN:MAX: every seed's lengths (max 0: none given) */
    const char *argv0;
};

/* The core's assertions land here (px_assert_fail is weak in the core): the seed becomes a
 * reported violation with its replay line instead of an abort without context. */
static jmp_buf sim_assert_jmp;
static bool sim_assert_armed;
static char sim_assert_msg[256];

void px_assert_fail(const char *expr, const char *file, int line)
{
    snprintf(sim_assert_msg, sizeof(sim_assert_msg), "PX_ASSERT(%s) failed at %s:%d", expr, file,
             line);
    if (sim_assert_armed)
        longjmp(sim_assert_jmp, 1);
    fprintf(stderr, "px_sim: %s\n", sim_assert_msg);
    abort();
}

static double sim_uniform(struct sim_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* A random subset of size k of 0..n-1, as role bits. */
static void sim_draw_subset(struct sim_rng *r, struct px_config *c, uint32_t k, uint64_t role)
{
    uint16_t ids[SIM_NODES_MAX];
    for (uint16_t j = 0; j < c->nodes; j++)
        ids[j] = j;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t pick = j + (uint32_t)sim_rng_below(r, c->nodes - j);
        uint16_t t = ids[j];
        ids[j] = ids[pick];
        ids[pick] = t;
        c->roles[ids[j]] |= role;
    }
}

static void sim_draw_config(struct sim_rng *r, const struct sim_run_opts *o, struct px_config *c)
{
    memset(c, 0, sizeof(*c));
    c->nodes = (uint16_t)(o->nodes ? o->nodes : 3 + sim_rng_below(r, 5));
    if (sim_rng_chance(r, 0.6)) { /* the common shape: every node holds every role */
        for (uint16_t j = 0; j < c->nodes; j++)
            c->roles[j] = PX_ROLE_PROPOSER | PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER;
    } else {
        uint32_t acc = c->nodes <= 3 ? c->nodes : 3 + (uint32_t)sim_rng_below(r, c->nodes - 2);
        sim_draw_subset(r, c, acc, PX_ROLE_ACCEPTOR);
        sim_draw_subset(r, c, 1 + (uint32_t)sim_rng_below(r, c->nodes), PX_ROLE_PROPOSER);
        sim_draw_subset(r, c, 1 + (uint32_t)sim_rng_below(r, c->nodes), PX_ROLE_LEARNER);
    }
    c->window_max = 1 + (uint32_t)sim_rng_below(r, 8);
    c->rotate_every = sim_rng_chance(r, 0.4) ? 2 + (uint32_t)sim_rng_below(r, 10) : 0;
    c->election_ticks = 10 + (uint32_t)sim_rng_below(r, 20);
    c->heartbeat_ticks = 2 + (uint32_t)sim_rng_below(r, c->election_ticks / 4);
    c->batch = sim_rng_chance(r, 0.5);
}

/* The fault mix of one seed: each kind on or off, with its own rate. */
struct sim_mix {
    double partition, crash, lag, roles;
    struct sim_rng role_rng; /* own stream: seeds without role changes replay unchanged */
    double amnesia;
    struct sim_rng amnesia_rng; /* own stream, like role_rng */
    uint64_t forget_at;         /* the tick an eligible acceptor is crashed and loses its store */
    uint32_t chaos_ticks;
    uint64_t heal_at; /* tick the current partition ends; 0 = none */
    bool partitioned;
};

static void sim_draw_faults(struct sim *s, struct sim_mix *x)
{
    struct sim_rng *r = &s->rng;
    memset(x, 0, sizeof(*x));
    s->p_drop = sim_rng_chance(r, 0.6) ? sim_uniform(r, 0.0, 0.15) : 0.0;
    s->p_dup = sim_rng_chance(r, 0.5) ? sim_uniform(r, 0.0, 0.1) : 0.0;
    s->p_reorder = sim_rng_chance(r, 0.5) ? sim_uniform(r, 0.0, 0.2) : 0.0;
    s->lat_min = 1;
    s->lat_max = 1 + (uint32_t)sim_rng_below(r, 4);
    s->p_delay = sim_rng_chance(r, 0.4) ? sim_uniform(r, 0.0, 0.05) : 0.0;
    s->delay_max = 5 + (uint32_t)sim_rng_below(r, 40);
    x->partition = sim_rng_chance(r, 0.5) ? sim_uniform(r, 0.002, 0.02) : 0.0;
    x->crash = sim_rng_chance(r, 0.6) ? sim_uniform(r, 0.001, 0.01) : 0.0;
    s->p_crash_mid = x->crash > 0.0 ? sim_uniform(r, 0.0, 0.002) : 0.0;
    x->lag = sim_rng_chance(r, 0.4) ? sim_uniform(r, 0.002, 0.01) : 0.0;
    x->chaos_ticks = 300 + (uint32_t)sim_rng_below(r, 4700);
}

/* The rings of one seed and its hung consumers, from their own stream (net_rng): a seed that
 * draws neither replays as it did before they were drawn. Some seeds get tiny rings and
 * outboxes (1..64 slots, where the real ones hold 4096), so that sends find their ring full and
 * queue in the outbox, a full outbox refuses with -ENOBUFS and the congestion window halves,
 * and a broadcast blocked by a consumer a full ring behind detaches it (`lagged, missed = k`).
 * Rings of fewer than 8 slots carry less than one round trip (up to 5 ticks) of a leader's
 * heartbeats and a follower's acks: the pool then falls behind its own heartbeats for good, a
 * liveness failure of the model, not of the code (the binary takes 64..65536 slots).
 * Others get hung consumers: a live node stops reading for 10..160 ticks (sim_maybe_hang), its
 * senders see full rings, until the end of the chaos phase. */
#define SIM_TINY_RINGS_SEEDS 0.15
#define SIM_HANG_SEEDS       0.2
static void sim_draw_net(struct sim *s, const struct sim_mix *x)
{
    struct sim_rng *r = &s->net_rng;
    r->s = s->opt.seed ^ 0x72696e67732e2e2eull;
    if (sim_rng_chance(r, SIM_TINY_RINGS_SEEDS)) {
        s->ring_slots = 1u << (3 + sim_rng_below(r, 4)); /* 8..64 */
        s->bcast_slots = 1u << (3 + sim_rng_below(r, 4));
        s->outbox_max = 1u << sim_rng_below(r, 7); /* 1..64 */
    }
    s->p_hang = sim_rng_chance(r, SIM_HANG_SEEDS) ? sim_uniform(r, 0.002, 0.01) : 0.0;
    s->hang_end = x->chaos_ticks;
    if (s->trace)
        fprintf(s->out, "rings %u, broadcast %u, outbox %u; hung consumers %.4f per tick\n",
                s->ring_slots, s->bcast_slots, s->outbox_max, s->p_hang);
}

/* One partition: a node cut off, a minority/majority split, or one-way links. */
static void sim_partition(struct sim *s)
{
    struct sim_rng *r = &s->rng;
    uint16_t n = s->n;
    uint32_t kind = (uint32_t)sim_rng_below(r, 3);
    bool side[SIM_NODES_MAX] = {false};
    if (kind == 0) {
        side[sim_rng_below(r, n)] = true;
    } else {
        uint32_t k = 1 + (uint32_t)sim_rng_below(r, n - 1u);
        for (uint32_t j = 0; j < k; j++)
            side[sim_rng_below(r, n)] = true;
    }
    for (uint16_t a = 0; a < n; a++)
        for (uint16_t b = 0; b < n; b++) {
            if (side[a] == side[b])
                continue;
            if (kind < 2 || (side[a] && sim_rng_chance(r, 0.7)))
                sim_block(s, a, b, true); /* kind 2: mostly one direction only */
        }
    s->faults[SIM_F_PARTITION]++;
    if (s->trace) {
        fprintf(s->out, "t=%llu partition kind %u:", (unsigned long long)s->now, kind);
        for (uint16_t a = 0; a < n; a++)
            fprintf(s->out, " %u%s", a, side[a] ? "*" : "");
        fprintf(s->out, "\n");
    }
}

/* A restarted node whose store was lost votes again as an acceptor with no memory of its
 * promises: the planted bug the checker must catch (`agreement`). */
#ifdef PX_SIM_BUG_BLANK_ACCEPTOR_VOTES
static const bool sim_blank_restarts = true;
#else
static const bool sim_blank_restarts = false;
#endif

/* --amnesia: node j just crashed; perhaps its store is lost too. At most one node per seed,
 * an acceptor that is no learner, and only where the others keep a majority of the acceptors, a
 * proposer and a learner (the pool goes on without it for good). */
static void sim_forget(struct sim *s, struct sim_mix *x, uint16_t j)
{
    if (x->amnesia == 0.0 || s->node[j].up || !sim_rng_chance(&x->amnesia_rng, x->amnesia))
        return;
    uint32_t acc = 0, others_p = 0, others_l = 0;
    for (uint16_t k = 0; k < s->n; k++) {
        if (s->node[k].forgot)
            return;
        acc += (s->cfg.roles[k] & PX_ROLE_ACCEPTOR) != 0;
        others_p += k != j && (s->cfg.roles[k] & PX_ROLE_PROPOSER);
        others_l += k != j && (s->cfg.roles[k] & PX_ROLE_LEARNER);
    }
    /* Not a learner: a learner down for good holds truncation back (the leader's hint is the
     * lowest index every learner has acknowledged) and may be the only one that can serve a
     * catch-up; the pool would stall, which is not what this fault is about. */
    if ((s->cfg.roles[j] & (PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER)) != PX_ROLE_ACCEPTOR || acc < 3 ||
        others_p == 0 || others_l == 0)
        return;
    sim_store_wipe(s, j);
    s->node[j].forgot = true;
    s->faults[SIM_F_AMNESIA]++;
    if (s->trace)
        fprintf(s->out, "t=%llu %u lost its store%s\n", (unsigned long long)s->now, j,
                sim_blank_restarts ? " (it will vote again blank)" : " (kept down for good)");
}

/* --amnesia: at forget_at, an acceptor that is no learner (the first from a drawn start) is
 * crashed if it is up, and may lose its store (sim_forget). */
static void sim_chaos_amnesia(struct sim *s, struct sim_mix *x)
{
    if (x->amnesia == 0.0 || s->now != x->forget_at)
        return;
    uint16_t j = (uint16_t)sim_rng_below(&x->amnesia_rng, s->n);
    for (uint16_t k = 0; k < s->n; k++, j = (uint16_t)((j + 1) % s->n))
        if ((s->cfg.roles[j] & (PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER)) == PX_ROLE_ACCEPTOR) {
            if (s->node[j].up)
                sim_crash(s, j);
            double p = x->amnesia;
            x->amnesia = 1.0; /* this crash is the one that loses the store */
            sim_forget(s, x, j);
            x->amnesia = p;
            return;
        }
}

static void sim_chaos(struct sim *s, struct sim_mix *x)
{
    struct sim_rng *r = &s->rng;
    if (x->partitioned && s->now >= x->heal_at) {
        sim_heal(s);
        x->partitioned = false;
        if (s->trace)
            fprintf(s->out, "t=%llu heal\n", (unsigned long long)s->now);
    } else if (!x->partitioned && sim_rng_chance(r, x->partition)) {
        sim_partition(s);
        x->partitioned = true;
        x->heal_at = s->now + 10 + sim_rng_below(r, 150);
    }
    for (uint16_t j = 0; j < s->n; j++) { /* a dead node comes back after a random downtime */
        struct sim_node *nd = &s->node[j];
        if (nd->up || (nd->forgot && !sim_blank_restarts))
            continue;
        if (nd->restart_at == 0) {
            nd->restart_at = s->now + 1 + sim_rng_below(r, 100);
        } else if (s->now >= nd->restart_at) {
            nd->restart_at = 0;
            sim_restart(s, j);
        }
    }
    if (sim_rng_chance(r, x->crash)) {
        uint16_t j = (uint16_t)sim_rng_below(r, s->n);
        if (s->last_leader != PX_NODE_NONE && sim_rng_chance(r, 0.4))
            j = s->last_leader; /* the leader is the interesting victim */
        sim_crash(s, j);
        sim_forget(s, x, j);
    }
    if (sim_rng_chance(r, x->lag)) {
        struct sim_node *nd = &s->node[sim_rng_below(r, s->n)];
        if (nd->up && nd->lag == 0) {
            nd->lag = 2 + (uint32_t)sim_rng_below(r, 7);
            nd->lag_until = s->now + 20 + sim_rng_below(r, 200);
            s->faults[SIM_F_LAG]++;
        }
    }
}

/* Flip the proposer or the learner role of one node, keeping at least one of each. */
static void sim_chaos_roles(struct sim *s, struct sim_mix *x)
{
    struct sim_rng *r = &x->role_rng;
    if (!sim_rng_chance(r, x->roles))
        return;
    uint16_t id = (uint16_t)sim_rng_below(r, s->n);
    uint64_t bit = sim_rng_chance(r, 0.5) ? PX_ROLE_PROPOSER : PX_ROLE_LEARNER;
    uint32_t holders = 0;
    for (uint16_t j = 0; j < s->n; j++)
        holders += (s->cfg.roles[j] & bit) != 0;
    if ((s->cfg.roles[id] & bit) && holders <= 1)
        return;
    sim_set_roles(s, id, s->cfg.roles[id] ^ bit);
}

/* End of chaos: the network becomes reliable, every node comes back and keeps up. */
static void sim_heal_all(struct sim *s)
{
    sim_heal(s);
    s->p_drop = s->p_dup = s->p_reorder = s->p_delay = s->p_crash_mid = 0.0;
    s->lat_max = s->lat_min; /* FIFO links again, like the rings (no jitter reordering) */
    for (uint16_t j = 0; j < s->n; j++) {
        s->node[j].restart_at = 0;
        if (!s->node[j].forgot || sim_blank_restarts)
            sim_restart(s, j);
        s->node[j].lag = 0;
    }
    if (s->trace)
        fprintf(s->out, "t=%llu all faults healed\n", (unsigned long long)s->now);
}

/* A seed's bounds of virtual time and of work, fixed before it starts. */
struct sim_bounds {
    uint64_t ticks_max, msgs_max, data_max;
};

static struct sim_bounds sim_bounds_of(const struct sim *s, const struct sim_mix *x)
{
    struct sim_bounds b;
    b.ticks_max =
        x->chaos_ticks + SIM_LIVE_TICKS_BASE + (uint64_t)SIM_LIVE_TICKS_PER_ROUND * s->rounds;
    uint32_t slots = s->ring_slots < s->bcast_slots ? s->ring_slots : s->bcast_slots;
    b.ticks_max += SIM_LIVE_TICKS_PER_CHUNK_SLOT * s->cmd_chunks / slots;
    b.msgs_max = b.ticks_max * s->n * SIM_WORK_MSGS_PER_NODE_TICK;
    b.data_max = b.msgs_max + SIM_WORK_DATA_PER_CHUNK_NODE * s->cmd_chunks * (s->n - 1u);
    return b;
}

/* False (and a liveness violation) once the seed did more work than its bounds allow. */
static bool sim_within_work(struct sim *s, const struct sim_bounds *b)
{
    size_t backlog = 0;
    for (uint16_t j = 0; j < s->n; j++)
        backlog += s->node[j].inbox_len;
    uint64_t msgs = s->send_seq - s->data_sent;
    if (msgs <= b->msgs_max && s->data_sent <= b->data_max && backlog <= SIM_BACKLOG_MAX)
        return true;
    sim_violate(s, SIM_V_LIVENESS,
                "work bound: %llu messages sent (bound %llu), %llu DATA (bound %llu), %zu "
                "delivered but not stepped (bound %u), %u of %u requests applied",
                (unsigned long long)msgs, (unsigned long long)b->msgs_max,
                (unsigned long long)s->data_sent, (unsigned long long)b->data_max, backlog,
                SIM_BACKLOG_MAX, s->done, s->rounds);
    return false;
}

static void sim_run_seed(struct sim *s, const struct sim_run_opts *o)
{
    struct sim_mix x;
    sim_draw_faults(s, &x);
    sim_draw_net(s, &x);
    if (o->no_faults) { /* after the draws, so the pool and load stay those of the seed */
        s->p_drop = s->p_dup = s->p_reorder = s->p_delay = s->p_crash_mid = 0.0;
        s->p_hang = 0.0;
        s->lat_max = s->lat_min;
        x.partition = x.crash = x.lag = 0.0;
    }
    (void)sim_cc_draw(s, x.chaos_ticks, !o->no_faults);
    if (o->role_changes) {
        x.role_rng.s = s->opt.seed ^ 0x5eed0f0e1e5ull;
        x.roles = sim_uniform(&x.role_rng, 0.001, 0.01);
    }
    if (o->amnesia && !o->no_faults) {
        x.amnesia_rng.s = s->opt.seed ^ 0xa3e5e1aull;
        x.amnesia = sim_uniform(&x.amnesia_rng, 0.2, 0.8);
        x.forget_at = 1 + sim_rng_below(&x.amnesia_rng, x.chaos_ticks);
        if (x.crash < 0.003) /* a lost store needs a crash to happen to */
            x.crash = 0.003;
    }
    struct sim_bounds b = sim_bounds_of(s, &x);
    while (s->now < x.chaos_ticks && s->viol == SIM_V_NONE && sim_within_work(s, &b)) {
        sim_chaos(s, &x);
        sim_chaos_roles(s, &x);
        sim_chaos_amnesia(s, &x);
        sim_tick(s, true, true, true);
    }
    if (s->viol != SIM_V_NONE)
        return;
    sim_heal_all(s);
    while (s->viol == SIM_V_NONE && !(sim_client_all_out(s) && sim_converged(s, true))) {
        if (s->now >= b.ticks_max) {
            sim_violate(s, SIM_V_LIVENESS,
                        "%u of %u requests applied, learners not converged %llu ticks after "
                        "healing",
                        s->done, s->rounds, (unsigned long long)(b.ticks_max - x.chaos_ticks));
            return;
        }
        if (!sim_within_work(s, &b))
            return;
        sim_tick(s, true, true, true);
    }
    sim_check_final(s);
}

static void sim_print_replay(FILE *f, const struct sim_run_opts *o, uint64_t seed)
{
    fprintf(f, "replay: %s --seed %" PRIu64 " --trace", o->argv0, seed);
    if (o->nodes)
        fprintf(f, " --nodes %u", o->nodes);
    if (o->rounds)
        fprintf(f, " --rounds %u", o->rounds);
    if (o->role_changes)
        fprintf(f, " --role-changes");
    if (o->amnesia)
        fprintf(f, " --amnesia");
    if (o->no_faults)
        fprintf(f, " --no-faults");
    if (o->sm_lib.path != NULL)
        fprintf(f, " --sm-lib %s", o->sm_lib.path);
    else if (o->sm)
        fprintf(f, " --sm");
    if (o->cmds.max > 0)
        fprintf(f, " --cmd-bytes %u:%u", o->cmds.min, o->cmds.max);
    else if (o->cmd_sizes)
        fprintf(f, " --cmd-sizes");
    fprintf(f, "\n");
}

/* The client side of a seed: rounds, clients, window; a few seeds run long. */
struct sim_load {
    uint32_t rounds, clients, window;
};

static void sim_draw_load(struct sim_rng *r, const struct sim_run_opts *o, struct px_config *c,
                          struct sim_load *l)
{
    l->rounds = 10 + (uint32_t)sim_rng_below(r, 190);
    l->clients = 1 + (uint32_t)sim_rng_below(r, 3);
    l->window = 1 + (uint32_t)sim_rng_below(r, 8);
    bool long_seed = sim_rng_chance(r, SIM_LONG_SEEDS);
    if (long_seed || o->rounds > PX_LOG_MAX) {
        /* A long seed: more instances than the core's log ring holds, a wide window. */
        l->rounds = PX_LOG_MAX + 500 + (uint32_t)sim_rng_below(r, PX_LOG_MAX / 2);
        l->window = 32 + (uint32_t)sim_rng_below(r, 96);
        l->clients = 1 + (uint32_t)sim_rng_below(r, SIM_CLIENTS_MAX);
        c->window_max = 16 + (uint32_t)sim_rng_below(r, 112);
    }
    if (o->rounds)
        l->rounds = o->rounds;
}

static void sim_trace_config(uint64_t seed, const struct px_config *c, const struct sim_load *l)
{
    printf("seed %" PRIu64 ": %u nodes, %u rounds, %u clients, client window %u, window_max %u, "
           "rotate %u, election %u, heartbeat %u, batch %d\n",
           seed, c->nodes, l->rounds, l->clients, l->window, c->window_max, c->rotate_every,
           c->election_ticks, c->heartbeat_ticks, c->batch);
    printf("roles (proposer/acceptor/learner):");
    for (uint16_t j = 0; j < c->nodes; j++)
        printf(" %u=%c%c%c", j, c->roles[j] & PX_ROLE_PROPOSER ? 'P' : '-',
               c->roles[j] & PX_ROLE_ACCEPTOR ? 'A' : '-',
               c->roles[j] & PX_ROLE_LEARNER ? 'L' : '-');
    printf("\n");
}

/* --amnesia: a lost store is drawn only for an acceptor that is no learner (sim_forget); so
 * that most pools have one, one acceptor that learns gives up learning where another learner
 * stays (its own stream: the pool is otherwise the seed's). */
static void sim_amnesia_roles(uint64_t seed, struct px_config *c)
{
    struct sim_rng r = {seed ^ 0x1ea4e4ull};
    uint32_t learners = 0;
    for (uint16_t j = 0; j < c->nodes; j++) {
        learners += (c->roles[j] & PX_ROLE_LEARNER) != 0;
        if ((c->roles[j] & (PX_ROLE_ACCEPTOR | PX_ROLE_LEARNER)) == PX_ROLE_ACCEPTOR)
            return; /* one already */
    }
    uint16_t j = (uint16_t)sim_rng_below(&r, c->nodes);
    for (uint16_t k = 0; k < c->nodes && learners >= 2; k++, j = (uint16_t)((j + 1) % c->nodes))
        if ((c->roles[j] & PX_ROLE_ACCEPTOR) && (c->roles[j] & PX_ROLE_LEARNER)) {
            c->roles[j] &= ~(uint64_t)PX_ROLE_LEARNER;
            return;
        }
}

/* --cmd-sizes: the longest command of a seed, from a stream of its own (the pool, load and
 * faults are the seed's): half the seeds 256 bytes (a few DATA chunks each), 30% 4 KiB, 15%
 * 64 KiB, 5% SIM_CMD_BYTES_MAX; a long seed (thousands of rounds) at most 4 KiB. Lengths run
 * from 0 (sim_cmd.c: a quarter inline, one in twenty at the top). --cmd-bytes fixes them. */
static struct sim_cmds sim_draw_cmds(const struct sim_run_opts *o, uint64_t seed,
                                     const struct sim_load *l)
{
    struct sim_cmds c = {.min = 0, .max = 0, .sm = false};
    if (o->cmds.max > 0)
        return o->cmds;
    if (!o->cmd_sizes)
        return c;
    struct sim_rng r = {seed ^ 0x636d642e73697a65ull};
    uint32_t pct = (uint32_t)sim_rng_below(&r, 100);
    c.max = pct < 50 ? 256u : pct < 80 ? 4096u : pct < 95 ? 65536u : SIM_CMD_BYTES_MAX;
    if (l->rounds > PX_LOG_MAX && c.max > 4096u)
        c.max = 4096u;
    return c;
}

/* --sm: CLIENT_REPLYs that came with their result and without, over every seed run. */
static uint64_t sim_sm_results[2];

/* Runs one seed; returns its violation kind and adds its fault counts to totals. */
static enum sim_viol sim_one(const struct sim_run_opts *o, uint64_t seed, uint64_t *totals,
                             bool report)
{
    static struct sim s; /* large; one at a time */
    struct sim_rng r = {seed};
    struct px_config cfg;
    struct sim_load load;
    sim_draw_config(&r, o, &cfg);
    sim_draw_load(&r, o, &cfg, &load);
    if (o->amnesia)
        sim_amnesia_roles(seed, &cfg);
    struct sim_cmds cmds = sim_draw_cmds(o, seed, &load);
    cmds.sm = o->sm;
    cmds.sm_lib = o->sm_lib.path != NULL ? &o->sm_lib : NULL;
    if (sim_init_cmds(&s, &cfg, seed, &cmds, stdout, o->trace) != 0) {
        fprintf(stderr, "px_sim: out of memory\n");
        exit(3);
    }
    s.rng = r;
    sim_set_rounds(&s, load.rounds, load.clients, load.window);
    if (o->trace)
        sim_trace_config(seed, &cfg, &load);
    if (o->trace && s.cmds.max > 0)
        printf("commands %u..%u bytes, %llu bytes beside the values\n", s.cmds.min, s.cmds.max,
               (unsigned long long)s.cmd_bytes);
    sim_assert_armed = true;
    if (setjmp(sim_assert_jmp) == 0)
        sim_run_seed(&s, o);
    else
        sim_violate(&s, SIM_V_ASSERT, "%s", sim_assert_msg);
    sim_assert_armed = false;
    for (int k = 0; k < SIM_F_COUNT; k++)
        totals[k] += s.faults[k];
    enum sim_viol v = s.viol;
    if (v != SIM_V_NONE && report) {
        printf("px_sim: seed %" PRIu64 ": VIOLATION %s at t=%llu: %s\n", seed, sim_viol_names[v],
               (unsigned long long)s.now, s.viol_msg);
        sim_print_replay(stdout, o, seed);
    } else if (o->trace) {
        const struct px_history *h = px_node_history(s.node[0].px);
        printf("seed %" PRIu64 ": ok at t=%llu, %llu requests, digest %016llx\n", seed,
               (unsigned long long)s.now, (unsigned long long)h->requests,
               (unsigned long long)h->digest);
    }
    if (o->sm && o->trace)
        printf("results: %llu replies with one, %llu without\n", (unsigned long long)s.results_ok,
               (unsigned long long)s.results_lost);
    sim_sm_results[0] += s.results_ok;
    sim_sm_results[1] += s.results_lost;
    sim_free(&s);
    fflush(stdout);
    return v;
}

static double sim_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int sim_soak(const struct sim_run_opts *o, uint64_t from, uint64_t count, int expect)
{
    uint64_t totals[SIM_F_COUNT] = {0};
    uint64_t bad = 0, expected = 0;
    double t0 = sim_seconds();
    for (uint64_t seed = from; seed < from + count; seed++) {
        enum sim_viol v = sim_one(o, seed, totals, true);
        if (v != SIM_V_NONE)
            bad++;
        if (expect >= 0 && (int)v == expect) {
            expected++;
            count = seed - from + 1; /* caught: the planted bug is proven visible */
            break;
        }
    }
    double secs = sim_seconds() - t0;
    printf("px_sim: seeds %" PRIu64 "..%" PRIu64 ": %" PRIu64 " ok, %" PRIu64 " violated, %.2f s\n",
           from, from + count - 1, count - bad, bad, secs);
    if (o->sm)
        printf("px_sim: %" PRIu64 " replies came with their result, %" PRIu64 " without\n",
               sim_sm_results[0], sim_sm_results[1]);
    printf("%-16s %12s\n", "fault", "injected");
    for (int k = 0; k < SIM_F_COUNT; k++)
        printf("%-16s %12" PRIu64 "\n", sim_fault_names[k], totals[k]);
    if (expect >= 0) {
        printf("px_sim: expected violation '%s' found in %" PRIu64 " of %" PRIu64 " seeds\n",
               sim_viol_names[expect], expected, count);
        return expected > 0 ? 0 : 1;
    }
    return bad == 0 ? 0 : 1;
}

static int sim_parse_u64(const char *flag, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "px_sim: %s must be an integer in [%llu, %llu], got '%s'\n", flag,
                (unsigned long long)lo, (unsigned long long)hi, arg);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void sim_usage(FILE *f)
{
    fprintf(
        f,
        "usage: px_sim --seed S [--trace] [--nodes N] [--rounds R] [--role-changes] [--amnesia]\n"
        "              [--no-faults] [--cmd-sizes | --cmd-bytes MIN:MAX] [--sm | --sm-lib PATH]\n"
        "       px_sim --seeds N [--from S] [--expect-violation KIND] [--role-changes] "
        "[--amnesia]\n"
        "              [--cmd-sizes | --cmd-bytes MIN:MAX] [--sm | --sm-lib PATH]\n"
        "       px_sim --script FILE [--trace] [--rewrite]\n"
        "KIND: agreement validity exactly-once promise persist order state liveness "
        "final assert client command\n");
}

static int sim_viol_parse(const char *name)
{
    for (int k = 1; k < SIM_V_COUNT; k++)
        if (strcmp(name, sim_viol_names[k]) == 0)
            return k;
    return -1;
}

struct sim_cli {
    struct sim_run_opts o;
    uint64_t seed, seeds, from;
    bool have_seed;
    const char *script;
    bool rewrite; /* --rewrite: the script's golden trace is written, not compared */
    int expect;   /* enum sim_viol, or -1 */
};

/* --cmd-bytes MIN:MAX (or N: every command N bytes), within 0..SIM_CMD_BYTES_MAX. */
static int sim_parse_cmds(const char *arg, struct sim_cmds *out)
{
    char lo[32], *colon = strchr(arg, ':');
    uint64_t a = 0, b = 0;
    if (colon == NULL) {
        if (sim_parse_u64("--cmd-bytes", arg, 1, SIM_CMD_BYTES_MAX, &a) != 0)
            return -EINVAL;
        b = a;
    } else {
        size_t n = (size_t)(colon - arg);
        if (n == 0 || n >= sizeof(lo)) {
            fprintf(stderr, "px_sim: --cmd-bytes takes MIN:MAX, got '%s'\n", arg);
            return -EINVAL;
        }
        memcpy(lo, arg, n);
        lo[n] = '\0';
        if (sim_parse_u64("--cmd-bytes MIN", lo, 0, SIM_CMD_BYTES_MAX, &a) != 0 ||
            sim_parse_u64("--cmd-bytes MAX", colon + 1, a > 1 ? a : 1, SIM_CMD_BYTES_MAX, &b) != 0)
            return -EINVAL;
    }
    out->min = (uint32_t)a;
    out->max = (uint32_t)b;
    return 0;
}

/* --sm-lib PATH: loads the shared object and finds its factory (paxos-shm/paxos_shm_sim.h).
 * 0, or 2 after one line on stderr. A path without a slash is taken in the current directory
 * (dlopen would search the library path for it). */
static int sim_load_sm_lib(struct sim_sm_lib *l)
{
    static char here[4096];
    const char *path = l->path;
    if (strchr(path, '/') == NULL) {
        if (snprintf(here, sizeof(here), "./%s", path) >= (int)sizeof(here)) {
            fprintf(stderr, "px_sim: --sm-lib %s: path too long\n", path);
            return 2;
        }
        path = here;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        fprintf(stderr, "px_sim: --sm-lib %s: cannot load: %s\n", l->path,
                e != NULL ? e : "dlopen failed");
        return 2;
    }
    void *make = dlsym(h, "pxs_sim_state_machine");
    if (make == NULL) {
        fprintf(stderr,
                "px_sim: --sm-lib %s: exports no pxs_sim_state_machine "
                "(paxos-shm/paxos_shm_sim.h)\n",
                l->path);
        dlclose(h);
        return 2;
    }
    void *drop = dlsym(h, "pxs_sim_state_machine_free");
    /* POSIX: a dlsym result converts to a function pointer through memcpy (ISO C has no cast) */
    memcpy(&l->make, &make, sizeof(make));
    if (drop != NULL)
        memcpy(&l->free, &drop, sizeof(drop));
    return 0; /* the handle stays open for the whole run */
}

/* One option; returns 0, or the exit code (2 usage) when main must stop. */
static int sim_parse_opt(struct sim_cli *cli, int c)
{
    uint64_t v = 0;
    int rc = 0;
    switch (c) {
    case 's':
        cli->have_seed = true;
        return sim_parse_u64("--seed", optarg, 0, UINT64_MAX, &cli->seed) ? 2 : 0;
    case 'n':
        return sim_parse_u64("--seeds", optarg, 1, 100000000, &cli->seeds) ? 2 : 0;
    case 'f':
        return sim_parse_u64("--from", optarg, 0, UINT64_MAX / 2, &cli->from) ? 2 : 0;
    case 't':
        cli->o.trace = true;
        return 0;
    case 'r':
        cli->o.role_changes = true;
        return 0;
    case 'a':
        cli->o.amnesia = true;
        return 0;
    case 'z':
        cli->o.no_faults = true;
        return 0;
    case 'N':
        rc = sim_parse_u64("--nodes", optarg, 3, SIM_NODES_MAX, &v);
        cli->o.nodes = (uint32_t)v;
        return rc ? 2 : 0;
    case 'R':
        rc = sim_parse_u64("--rounds", optarg, 1, SIM_ROUNDS_MAX, &v);
        cli->o.rounds = (uint32_t)v;
        return rc ? 2 : 0;
    case 'S':
        cli->script = optarg;
        return 0;
    case 'c':
        cli->o.cmd_sizes = true;
        return 0;
    case 'B':
        return sim_parse_cmds(optarg, &cli->o.cmds) ? 2 : 0;
    case 'M':
        cli->o.sm = true;
        return 0;
    case 'L':
        cli->o.sm = true;
        cli->o.sm_lib.path = optarg;
        return 0;
    case 'w':
        cli->rewrite = true;
        return 0;
    case 'e':
        cli->expect = sim_viol_parse(optarg);
        if (cli->expect >= 0)
            return 0;
        fprintf(stderr, "px_sim: unknown violation kind '%s'\n", optarg);
        return 2;
    default:
        sim_usage(stderr);
        return 2;
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"seed", required_argument, NULL, 's'},
        {"seeds", required_argument, NULL, 'n'},
        {"from", required_argument, NULL, 'f'},
        {"trace", no_argument, NULL, 't'},
        {"nodes", required_argument, NULL, 'N'},
        {"rounds", required_argument, NULL, 'R'},
        {"script", required_argument, NULL, 'S'},
        {"rewrite", no_argument, NULL, 'w'},
        {"expect-violation", required_argument, NULL, 'e'},
        {"role-changes", no_argument, NULL, 'r'},
        {"amnesia", no_argument, NULL, 'a'},
        {"no-faults", no_argument, NULL, 'z'},
        {"cmd-sizes", no_argument, NULL, 'c'},
        {"cmd-bytes", required_argument, NULL, 'B'},
        {"sm", no_argument, NULL, 'M'},
        {"sm-lib", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct sim_cli cli = {.o = {.argv0 = argv[0]}, .seed = 1, .from = 1, .expect = -1};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'h') {
            sim_usage(stdout);
            return 0;
        }
        int rc = sim_parse_opt(&cli, c);
        if (rc != 0)
            return rc;
    }
    if (optind != argc || (cli.script == NULL && !cli.have_seed && cli.seeds == 0) ||
        (cli.rewrite && cli.script == NULL)) {
        sim_usage(stderr);
        return 2;
    }
    if (cli.script != NULL && cli.o.sm_lib.path != NULL) {
        fprintf(stderr, "px_sim: --sm-lib runs seeds (--seed, --seeds), not --script\n");
        return 2;
    }
    if (cli.o.sm_lib.path != NULL) {
        int rc = sim_load_sm_lib(&cli.o.sm_lib);
        if (rc != 0)
            return rc;
    }
    if (cli.script != NULL)
        return sim_script_run(cli.script, cli.o.trace, cli.rewrite) == 0 ? 0 : 1;
    if (cli.seeds > 0)
        return sim_soak(&cli.o, cli.from, cli.seeds, cli.expect);
    uint64_t totals[SIM_F_COUNT] = {0};
    return sim_one(&cli.o, cli.seed, totals, true) == SIM_V_NONE ? 0 : 1;
}
