/* sim_script.c: readable scenario scripts (etcd-raft testdata style) replayed by the simulator.
 *
 * One command per line, '#' starts a comment. The first command may be `config key=value...`
 * (nodes rounds clients window rotate election heartbeat batch seed proposers acceptors
 * learners ring bcast outbox; role lists are `all` or `0,1,2`; ring, bcast and outbox are the
 * slots of each point-to-point ring, each broadcast ring and each outbox, default 4096).
 * Commands:
 *   submit N [to=K]          the client hands the next N rounds to node K (default: a proposer)
 *   tick N [nodes=a,b]       N ticks of the listed (default: every live) node, no delivery
 *   campaign K [max=T]       only K's timers run, messages flow, until K leads
 *   run N                    N ticks with delivery and client resubmission
 *   deliver-all              deliver every message in flight, and what it causes, until quiet
 *   deliver [from=] [to=] [type=] [count=]   deliver matching messages in network order
 *   drop [from=] [to=] [type=] [count=]      lose matching messages
 *   crash K | restart K | partition 0,1 | 2,3,4 | block from=A to=B | heal
 *   crash-at K point=before-commit|after-commit|mid-send [after=N]   K dies at that point of
 *                            its next flush point that persists (mid-send: that has more than
 *                            N sends, after the N-th); the store keeps what was committed
 *   hang K ticks=T           K stops running for T ticks (a hung consumer: its rings fill)
 *   stabilize [max=T]        run until every submitted round is applied on every live learner
 *   check-decided A..B [node=K]   instances chosen (and applied by node K)
 *   check-undecided A..B     no learner decided any of them
 *   check-leader K | check-leaders N   K believes it leads | N nodes believe they lead
 *   check-accepted node=K inst=I (noop | client=C seq=S)   in K's durable store
 *   check-chosen inst=I (noop | client=C seq=S)   the value decided for instance I
 *   check-truncated node=K atleast=T
 *   check-unaccepted node=K inst=I   K's durable store holds no accepted entry for I
 *   check-fault NAME atleast=N   the soak counter NAME (ring-full, outbox-full, lagged, hangs,
 *                            crashes...; dashes for spaces) reached N
 *   check-final              converged, same state everywhere: R requests, the agreed log's
 *                            digest, its value F(R+1)
 * Every invariant of the random simulator is checked after every step as well.
 *
 * A line `-- expect --` ends the commands; what follows is the golden trace, the summary a
 * clean run must print (sim_golden.c: time, rounds, each node's roles, leader belief and
 * durable state, the decided log, the fault counters that moved). --rewrite writes it there.
 */
#include "sim.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A script line: longer lines are a script bug, reported. */
#define SIM_LINE_MAX 512
/* Words on one line (command plus key=value arguments). */
#define SIM_WORDS_MAX 32
/* deliver-all rounds before the script is declared to livelock. */
#define SIM_DELIVER_ALL_MAX 10000
/* campaign's default bound in ticks: a few election timeouts. */
#define SIM_CAMPAIGN_TICKS 400
/* stabilize's default bound in ticks. */
#define SIM_STABILIZE_TICKS 5000

struct sim_script {
    const char *path;
    int line;
    bool trace;
    bool started, configured;
    struct px_config cfg;
    uint64_t seed;
    uint32_t rounds, clients, window;
    uint32_t ring_slots, bcast_slots, outbox_max;
    struct sim s;
};

static int sim_fail(struct sim_script *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sim_fail(struct sim_script *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", x->path, x->line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return -1;
}

/* value of key=value among words, or NULL */
static const char *sim_arg(char **w, int nw, const char *key)
{
    size_t k = strlen(key);
    for (int i = 1; i < nw; i++)
        if (strncmp(w[i], key, k) == 0 && w[i][k] == '=')
            return w[i] + k + 1;
    return NULL;
}

static bool sim_flag(char **w, int nw, const char *word)
{
    for (int i = 1; i < nw; i++)
        if (strcmp(w[i], word) == 0)
            return true;
    return false;
}

static long sim_num(const char *v, long dflt)
{
    if (v == NULL)
        return dflt;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    return (end == v || *end != '\0') ? LONG_MIN : x;
}

/* "all" or "0,2,3": sets role bits. */
static int sim_roles(struct sim_script *x, const char *list, uint64_t role)
{
    for (uint16_t j = 0; j < x->cfg.nodes; j++)
        x->cfg.roles[j] &= ~role;
    if (strcmp(list, "all") == 0) {
        for (uint16_t j = 0; j < x->cfg.nodes; j++)
            x->cfg.roles[j] |= role;
        return 0;
    }
    const char *p = list;
    while (*p) {
        char *end = NULL;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id >= x->cfg.nodes)
            return sim_fail(x, "bad node list '%s'", list);
        x->cfg.roles[id] |= role;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int sim_cmd_config(struct sim_script *x, char **w, int nw)
{
    long nodes = sim_num(sim_arg(w, nw, "nodes"), 3);
    if (nodes < 1 || nodes > SIM_NODES_MAX)
        return sim_fail(x, "nodes out of range in '%s'", w[0]);
    x->cfg.nodes = (uint16_t)nodes;
    x->configured = true;
    x->rounds = (uint32_t)sim_num(sim_arg(w, nw, "rounds"), 10);
    x->clients = (uint32_t)sim_num(sim_arg(w, nw, "clients"), 1);
    x->window = (uint32_t)sim_num(sim_arg(w, nw, "window"), 4);
    x->cfg.window_max = (uint32_t)sim_num(sim_arg(w, nw, "window"), 4);
    x->cfg.rotate_every = (uint32_t)sim_num(sim_arg(w, nw, "rotate"), 0);
    x->cfg.election_ticks = (uint32_t)sim_num(sim_arg(w, nw, "election"), 20);
    x->cfg.heartbeat_ticks = (uint32_t)sim_num(sim_arg(w, nw, "heartbeat"), 5);
    x->cfg.batch = sim_num(sim_arg(w, nw, "batch"), 0) != 0;
    x->seed = (uint64_t)sim_num(sim_arg(w, nw, "seed"), 1);
    long ring = sim_num(sim_arg(w, nw, "ring"), SIM_RING_SLOTS_MAX);
    long bcast = sim_num(sim_arg(w, nw, "bcast"), SIM_RING_SLOTS_MAX);
    long outbox = sim_num(sim_arg(w, nw, "outbox"), SIM_OUTBOX_MAX);
    if (ring < 1 || ring > SIM_RING_SLOTS_MAX || bcast < 1 || bcast > SIM_RING_SLOTS_MAX ||
        outbox < 1 || outbox > SIM_OUTBOX_MAX)
        return sim_fail(x, "ring, bcast or outbox out of range in '%s'", w[0]);
    x->ring_slots = (uint32_t)ring;
    x->bcast_slots = (uint32_t)bcast;
    x->outbox_max = (uint32_t)outbox;
    const char *p = sim_arg(w, nw, "proposers"), *a = sim_arg(w, nw, "acceptors");
    const char *l = sim_arg(w, nw, "learners");
    if (sim_roles(x, p ? p : "all", PX_ROLE_PROPOSER) ||
        sim_roles(x, a ? a : "all", PX_ROLE_ACCEPTOR) ||
        sim_roles(x, l ? l : "all", PX_ROLE_LEARNER))
        return -1;
    return 0;
}

static int sim_start(struct sim_script *x)
{
    if (x->started)
        return 0;
    if (!x->configured) {
        char word[] = "config";
        char *w[1] = {word};
        if (sim_cmd_config(x, w, 1))
            return -1;
    }
    if (sim_init(&x->s, &x->cfg, x->seed, stdout, x->trace) != 0)
        return sim_fail(x, "%s", "out of memory");
    if (x->rounds == 0 || x->rounds > SIM_ROUNDS_MAX || x->clients == 0 ||
        x->clients > SIM_CLIENTS_MAX || x->window == 0 || x->window >= PX_DEDUP_SPAN)
        return sim_fail(x, "%s", "config: rounds, clients or window out of range");
    sim_set_rounds(&x->s, x->rounds, x->clients, x->window);
    x->s.ring_slots = x->ring_slots;
    x->s.bcast_slots = x->bcast_slots;
    x->s.outbox_max = x->outbox_max;
    x->started = true;
    return 0;
}

static int sim_node_arg(struct sim_script *x, const char *v, uint16_t *out)
{
    long id = sim_num(v, -1);
    if (id < 0 || id >= x->s.n)
        return sim_fail(x, "bad node '%s'", v ? v : "(missing)");
    *out = (uint16_t)id;
    return 0;
}

static int sim_range(struct sim_script *x, const char *v, px_inst_t *lo, px_inst_t *hi)
{
    char *end = NULL;
    if (v == NULL)
        return sim_fail(x, "%s", "missing range A..B");
    *lo = strtoull(v, &end, 10);
    *hi = *lo;
    if (end[0] == '.' && end[1] == '.')
        *hi = strtoull(end + 2, &end, 10);
    if (*end != '\0' || *lo == 0 || *hi < *lo)
        return sim_fail(x, "bad range '%s'", v);
    return 0;
}

static void sim_script_tick(struct sim_script *x, char **w, int nw)
{
    struct sim *s = &x->s;
    const char *list = sim_arg(w, nw, "nodes");
    bool pick[SIM_NODES_MAX] = {false};
    for (uint16_t j = 0; j < s->n; j++)
        pick[j] = list == NULL;
    for (const char *p = list; p && *p;) {
        char *end = NULL;
        long id = strtol(p, &end, 10);
        if (end == p)
            break;
        if (id >= 0 && id < s->n)
            pick[id] = true;
        p = *end == ',' ? end + 1 : end;
    }
    s->now++;
    for (uint16_t j = 0; j < s->n; j++)
        if (pick[j])
            sim_activate(s, j, true);
    sim_check_leaders(s);
}

static int sim_cmd_partition(struct sim_script *x, char **w, int nw)
{
    struct sim *s = &x->s;
    int group[SIM_NODES_MAX];
    int g = 0;
    for (uint16_t j = 0; j < s->n; j++)
        group[j] = -1;
    for (int i = 1; i < nw; i++) {
        if (strcmp(w[i], "|") == 0) {
            g++;
            continue;
        }
        for (const char *p = w[i]; *p;) {
            char *end = NULL;
            long id = strtol(p, &end, 10);
            if (end == p || id < 0 || id >= s->n)
                return sim_fail(x, "bad partition group '%s'", w[i]);
            group[id] = g;
            p = *end == ',' ? end + 1 : end;
        }
    }
    sim_heal(s);
    for (uint16_t a = 0; a < s->n; a++)
        for (uint16_t b = 0; b < s->n; b++)
            if (group[a] != group[b])
                sim_block(s, a, b, true);
    s->faults[SIM_F_PARTITION]++;
    return 0;
}

static int sim_cmd_deliver(struct sim_script *x, char **w, int nw, bool drop)
{
    const char *t = sim_arg(w, nw, "type");
    int type = t ? sim_msg_type_parse(t) : -1;
    if (t && type < 0)
        return sim_fail(x, "unknown message type '%s'", t);
    long from = sim_num(sim_arg(w, nw, "from"), -1), to = sim_num(sim_arg(w, nw, "to"), -1);
    long count = sim_num(sim_arg(w, nw, "count"), LONG_MAX);
    if (from == LONG_MIN || to == LONG_MIN || count == LONG_MIN)
        return sim_fail(x, "bad arguments to '%s'", w[0]);
    size_t k = sim_deliver_matching(&x->s, (int)from, (int)to, type, (size_t)count, drop);
    if (x->trace)
        printf("%s: %zu messages\n", w[0], k);
    return 0;
}

static int sim_cmd_deliver_all(struct sim_script *x)
{
    for (int k = 0; k < SIM_DELIVER_ALL_MAX && x->s.viol == SIM_V_NONE; k++) {
        if (sim_quiet(&x->s))
            return 0;
        (void)sim_deliver_matching(&x->s, -1, -1, -1, SIZE_MAX, false);
    }
    return x->s.viol != SIM_V_NONE ? 0 : sim_fail(x, "%s", "deliver-all never went quiet");
}

static int sim_cmd_stabilize(struct sim_script *x, char **w, int nw)
{
    struct sim *s = &x->s;
    long max = sim_num(sim_arg(w, nw, "max"), SIM_STABILIZE_TICKS);
    for (long k = 0; k < max && s->viol == SIM_V_NONE; k++) {
        if (sim_converged(s, false))
            return 0;
        sim_tick(s, true, true, true);
    }
    if (s->viol != SIM_V_NONE || sim_converged(s, false))
        return 0;
    char buf[64];
    snprintf(buf, sizeof(buf), "%u of %u", s->done, s->submitted);
    return sim_fail(x, "stabilize: not converged (%s submitted rounds applied)", buf);
}

static int sim_cmd_check_decided(struct sim_script *x, char **w, int nw, bool want)
{
    px_inst_t lo = 0, hi = 0;
    if (sim_range(x, nw > 1 ? w[1] : NULL, &lo, &hi))
        return -1;
    for (px_inst_t i = lo; i <= hi; i++) {
        bool chosen = i < x->s.inst_cap && x->s.inst[i].chosen;
        if (chosen != want)
            return sim_fail(x, "instance in '%s' is not as expected", w[1]);
    }
    const char *nv = sim_arg(w, nw, "node");
    uint16_t id = 0;
    if (nv == NULL)
        return 0;
    if (sim_node_arg(x, nv, &id))
        return -1;
    if (!x->s.node[id].up || px_node_history(x->s.node[id].px)->applied < hi)
        return sim_fail(x, "node %s has not applied the range", nv);
    return 0;
}

static int sim_cmd_check_accepted(struct sim_script *x, char **w, int nw)
{
    uint16_t id = 0;
    if (sim_node_arg(x, sim_arg(w, nw, "node"), &id))
        return -1;
    long i = sim_num(sim_arg(w, nw, "inst"), -1);
    const struct sim_store *st = &x->s.node[id].st;
    if (i <= 0 || (size_t)i >= st->cap || st->acc[i].ballot == 0)
        return sim_fail(x, "node has no durable accepted entry for '%s'", w[0]);
    const struct px_value *v = &st->acc[i].value;
    if (sim_flag(w, nw, "noop"))
        return v->client_id == 0 ? 0 : sim_fail(x, "%s: accepted a request, not a no-op", w[0]);
    long c = sim_num(sim_arg(w, nw, "client"), -1), q = sim_num(sim_arg(w, nw, "seq"), -1);
    if (c >= 0 && (v->client_id != c || v->seq != q)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "(%u,%u)", v->client_id, v->seq);
        return sim_fail(x, "check-accepted: durable value is %s", buf);
    }
    return 0;
}

/* check-chosen inst=I (noop | client=C seq=S): the value the checker knows chosen. */
static int sim_cmd_check_chosen(struct sim_script *x, char **w, int nw)
{
    long i = sim_num(sim_arg(w, nw, "inst"), -1);
    if (i <= 0 || (size_t)i >= x->s.inst_cap || !x->s.inst[i].chosen)
        return sim_fail(x, "check-chosen: instance %ld is not decided", i);
    const struct px_value *v = &x->s.inst[i].value;
    long c = sim_flag(w, nw, "noop") ? 0 : sim_num(sim_arg(w, nw, "client"), -1);
    long q = sim_flag(w, nw, "noop") ? 0 : sim_num(sim_arg(w, nw, "seq"), -1);
    if (v->client_id != c || v->seq != q)
        return sim_fail(x, "check-chosen: instance %ld holds (%u,%u)", i, v->client_id, v->seq);
    return 0;
}

static int sim_cmd_check_leaders(struct sim_script *x, char **w, int nw, bool count)
{
    long want = sim_num(nw > 1 ? w[1] : NULL, -1);
    long leaders = 0;
    for (uint16_t j = 0; j < x->s.n; j++)
        if (x->s.node[j].up && px_node_is_leader(x->s.node[j].px))
            leaders++;
    if (count)
        return leaders == want ? 0 : sim_fail(x, "check-leaders: %ld nodes lead", leaders);
    uint16_t id = 0;
    if (sim_node_arg(x, nw > 1 ? w[1] : NULL, &id))
        return -1;
    return x->s.node[id].up && px_node_is_leader(x->s.node[id].px)
               ? 0
               : sim_fail(x, "node %s does not believe it leads", w[1]);
}

/* Only node K's timers run (everybody else just answers, messages delivered every tick), until
 * K believes it leads: K's election timeout fires first. */
static int sim_cmd_campaign(struct sim_script *x, char **w, int nw)
{
    struct sim *s = &x->s;
    uint16_t id = 0;
    if (sim_node_arg(x, nw > 1 ? w[1] : NULL, &id))
        return -1;
    long max = sim_num(sim_arg(w, nw, "max"), SIM_CAMPAIGN_TICKS);
    for (long k = 0; k < max && s->viol == SIM_V_NONE; k++) {
        if (s->node[id].up && px_node_is_leader(s->node[id].px))
            return 0;
        s->now++;
        (void)sim_deliver_matching(s, -1, -1, -1, SIZE_MAX, false);
        sim_activate(s, id, true);
    }
    if (s->viol != SIM_V_NONE)
        return 0;
    return sim_fail(x, "campaign: node %u did not become leader", id);
}

static int sim_cmd_check_final(struct sim_script *x)
{
    if (!sim_converged(&x->s, true))
        return sim_fail(x, "%s", "check-final: learners have not converged");
    sim_check_final(&x->s);
    return 0;
}

static int sim_cmd_node(struct sim_script *x, char **w, int nw)
{
    uint16_t id = 0;
    if (sim_node_arg(x, nw > 1 ? w[1] : NULL, &id))
        return -1;
    if (strcmp(w[0], "crash") == 0)
        sim_crash(&x->s, id);
    else
        sim_restart(&x->s, id);
    return 0;
}

/* crash-at K point=... [after=N] | hang K ticks=T */
static int sim_cmd_fault(struct sim_script *x, char **w, int nw)
{
    static const char *const points[] = {"", "before-commit", "after-commit", "mid-send"};
    uint16_t id = 0;
    if (sim_node_arg(x, nw > 1 ? w[1] : NULL, &id))
        return -1;
    if (strcmp(w[0], "hang") == 0) {
        long t = sim_num(sim_arg(w, nw, "ticks"), -1);
        if (t <= 0)
            return sim_fail(x, "%s", "hang: ticks=T (T > 0) missing");
        sim_hang(&x->s, id, (uint64_t)t);
        return 0;
    }
    const char *p = sim_arg(w, nw, "point");
    long after = sim_num(sim_arg(w, nw, "after"), 0);
    for (int k = SIM_CP_BEFORE_COMMIT; p != NULL && k <= SIM_CP_MID_SEND && after >= 0; k++) {
        if (strcmp(p, points[k]) == 0) {
            sim_crash_at(&x->s, id, (enum sim_crash_point)k, (uint32_t)after);
            return 0;
        }
    }
    return sim_fail(x, "%s", "crash-at: point=before-commit|after-commit|mid-send [after=N]");
}

/* check-fault NAME atleast=N: NAME is a soak column with dashes for spaces. */
static int sim_cmd_check_fault(struct sim_script *x, char **w, int nw)
{
    char name[32] = "";
    snprintf(name, sizeof(name), "%s", nw > 1 ? w[1] : "");
    for (char *c = name; *c; c++)
        *c = *c == '-' ? ' ' : *c;
    long want = sim_num(sim_arg(w, nw, "atleast"), 1);
    for (int k = 0; k < SIM_F_COUNT; k++) {
        if (strcmp(name, sim_fault_names[k]) != 0)
            continue;
        if ((long)x->s.faults[k] >= want)
            return 0;
        return sim_fail(x, "check-fault: %s is %llu", sim_fault_names[k],
                        (unsigned long long)x->s.faults[k]);
    }
    return sim_fail(x, "check-fault: unknown counter '%s'", nw > 1 ? w[1] : "");
}

static int sim_cmd_check_unaccepted(struct sim_script *x, char **w, int nw)
{
    uint16_t id = 0;
    if (sim_node_arg(x, sim_arg(w, nw, "node"), &id))
        return -1;
    long i = sim_num(sim_arg(w, nw, "inst"), -1);
    const struct sim_store *st = &x->s.node[id].st;
    if (i <= 0)
        return sim_fail(x, "%s", "check-unaccepted: inst=I missing");
    if ((size_t)i < st->cap && st->acc[i].ballot != 0)
        return sim_fail(x, "check-unaccepted: node %u durably accepted instance %ld", id, i);
    return 0;
}

static int sim_cmd_misc(struct sim_script *x, char **w, int nw)
{
    struct sim *s = &x->s;
    const char *c = w[0];
    if (strcmp(c, "submit") == 0) {
        long to = sim_num(sim_arg(w, nw, "to"), -1);
        if (to >= s->n)
            return sim_fail(x, "bad target in '%s'", c);
        sim_client_submit(s, (uint32_t)sim_num(nw > 1 ? w[1] : NULL, 1), (int)to);
        for (uint16_t j = 0; j < s->n; j++) /* the node takes the values in at once */
            if (s->node[j].up && s->node[j].subq_len > 0)
                sim_activate(s, j, false);
    } else if (strcmp(c, "tick") == 0 || strcmp(c, "run") == 0) {
        long k = sim_num(nw > 1 ? w[1] : NULL, 1);
        for (long t = 0; t < k && s->viol == SIM_V_NONE; t++) {
            if (c[0] == 't')
                sim_script_tick(x, w, nw);
            else
                sim_tick(s, true, true, true);
        }
    } else if (strcmp(c, "heal") == 0) {
        sim_heal(s);
    } else if (strcmp(c, "block") == 0) {
        uint16_t a = 0, b = 0;
        if (sim_node_arg(x, sim_arg(w, nw, "from"), &a) ||
            sim_node_arg(x, sim_arg(w, nw, "to"), &b))
            return -1;
        sim_block(s, a, b, true);
    } else if (strcmp(c, "check-truncated") == 0) {
        uint16_t id = 0;
        if (sim_node_arg(x, sim_arg(w, nw, "node"), &id))
            return -1;
        long t = sim_num(sim_arg(w, nw, "atleast"), 1);
        if ((long)s->node[id].st.truncated < t)
            return sim_fail(x, "node has not truncated its log far enough for '%s'", c);
    } else {
        return sim_fail(x, "unknown command '%s'", c);
    }
    return 0;
}

static int sim_command(struct sim_script *x, char **w, int nw)
{
    const char *c = w[0];
    if (strcmp(c, "config") == 0)
        return x->started ? sim_fail(x, "%s", "config after the first command")
                          : sim_cmd_config(x, w, nw);
    if (sim_start(x))
        return -1;
    if (strcmp(c, "deliver-all") == 0)
        return sim_cmd_deliver_all(x);
    if (strcmp(c, "deliver") == 0 || strcmp(c, "drop") == 0)
        return sim_cmd_deliver(x, w, nw, c[1] == 'r');
    if (strcmp(c, "crash") == 0 || strcmp(c, "restart") == 0)
        return sim_cmd_node(x, w, nw);
    if (strcmp(c, "partition") == 0)
        return sim_cmd_partition(x, w, nw);
    if (strcmp(c, "campaign") == 0)
        return sim_cmd_campaign(x, w, nw);
    if (strcmp(c, "stabilize") == 0)
        return sim_cmd_stabilize(x, w, nw);
    if (strcmp(c, "check-decided") == 0 || strcmp(c, "check-undecided") == 0)
        return sim_cmd_check_decided(x, w, nw, c[6] == 'd');
    if (strcmp(c, "check-chosen") == 0)
        return sim_cmd_check_chosen(x, w, nw);
    if (strcmp(c, "check-accepted") == 0)
        return sim_cmd_check_accepted(x, w, nw);
    if (strcmp(c, "check-leader") == 0 || strcmp(c, "check-leaders") == 0)
        return sim_cmd_check_leaders(x, w, nw, c[12] == 's');
    if (strcmp(c, "check-final") == 0)
        return sim_cmd_check_final(x);
    if (strcmp(c, "crash-at") == 0 || strcmp(c, "hang") == 0)
        return sim_cmd_fault(x, w, nw);
    if (strcmp(c, "check-fault") == 0)
        return sim_cmd_check_fault(x, w, nw);
    if (strcmp(c, "check-unaccepted") == 0)
        return sim_cmd_check_unaccepted(x, w, nw);
    return sim_cmd_misc(x, w, nw);
}

static int sim_split(char *line, char **w)
{
    int nw = 0;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    for (char *tok = strtok(line, " \t\r\n"); tok && nw < SIM_WORDS_MAX;
         tok = strtok(NULL, " \t\r\n"))
        w[nw++] = tok;
    return nw;
}

/* The rest of f (the golden trace after the marker), ending in a newline; NULL when out of
 * memory or unreadable. */
static char *sim_read_rest(FILE *f)
{
    size_t len = 0, cap = 1024;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t k = fread(buf + len, 1, cap - len - 2, f);
        len += k;
        if (k == 0)
            break;
        char *bigger = cap - len <= 2 ? realloc(buf, cap * 2) : buf;
        if (bigger == NULL)
            free(buf);
        cap = bigger != buf ? cap * 2 : cap;
        buf = bigger;
    }
    if (buf == NULL || ferror(f)) {
        free(buf);
        return NULL;
    }
    if (len > 0 && buf[len - 1] != '\n')
        buf[len++] = '\n';
    buf[len] = '\0';
    return buf;
}

/* After a clean run: the summary compared with the golden trace (want), or written into the
 * file (rewrite). */
static int sim_golden_finish(struct sim_script *x, const char *want, long script_bytes,
                             bool rewrite)
{
    char *got = NULL;
    size_t got_len = 0;
    FILE *m = open_memstream(&got, &got_len);
    if (m == NULL)
        return sim_fail(x, "%s", "out of memory");
    sim_golden_summary(&x->s, m);
    int rc = fclose(m) == 0 ? 0 : sim_fail(x, "%s", "out of memory");
    if (rc == 0 && rewrite)
        rc = sim_golden_rewrite(x->path, script_bytes, got);
    else if (rc == 0)
        rc = sim_golden_compare(x->path, want, got);
    free(got);
    return rc;
}

int sim_script_run(const char *path, bool trace, bool rewrite)
{
    static struct sim_script x;
    memset(&x, 0, sizeof(x));
    x.path = path;
    x.trace = trace;
    char *w[SIM_WORDS_MAX];
    char line[SIM_LINE_MAX];
    x.cfg.nodes = 3;
    x.rounds = 10;
    x.clients = 1;
    x.window = 4;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    int rc = 0;
    char *want = NULL;
    long script_bytes = ftell(f);
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        x.line++;
        if (strcmp(line, sim_golden_marker) == 0) {
            want = sim_read_rest(f);
            rc = want ? 0 : sim_fail(&x, "%s", "cannot read the golden trace");
            break;
        }
        script_bytes = ftell(f);
        if (trace)
            printf("> %s", line);
        int nw = sim_split(line, w);
        if (nw > 0)
            rc = sim_command(&x, w, nw);
        if (rc == 0 && x.started && x.s.viol != SIM_V_NONE)
            rc = sim_fail(&x, "invariant violated: %s", x.s.viol_msg);
    }
    fclose(f);
    if (rc == 0 && (want != NULL || rewrite))
        rc = sim_start(&x) ? -1 : sim_golden_finish(&x, want, script_bytes, rewrite);
    free(want);
    if (x.started)
        sim_free(&x.s);
    if (rc == 0)
        printf("%s: ok (%d lines)%s\n", path, x.line, rewrite ? ", golden trace rewritten" : "");
    return rc;
}
