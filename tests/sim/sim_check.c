/* sim_check.c: the invariants, checked after every step of the simulation.
 *
 * The checker keeps its own view of the truth, built only from what nodes made durable or let
 * out: for every instance, each (ballot, value) and the set of acceptors that durably accepted
 * it (so "chosen" is known independently of any learner), the value learners decided, and what
 * the agreed log prefix implies (computed here, not by the core): the history every learner
 * must hold -- its count of requests and its digest chain -- and the Fibonacci value of the
 * state machine the rounds' increments feed.
 */
#include "sim.h"

#include "ipc/check.h"
#include "px_mix.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_viol_names[SIM_V_COUNT] = {
    "none",  "agreement", "validity", "exactly-once", "promise", "persist", "order",
    "state", "liveness",  "final",    "script",       "assert",  "client",  "command",
};

void sim_violate(struct sim *s, enum sim_viol kind, const char *fmt, ...)
{
    if (s->viol != SIM_V_NONE)
        return; /* the first violation is the one worth replaying */
    s->viol = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->viol_msg, sizeof(s->viol_msg), fmt, ap);
    va_end(ap);
    if (s->trace)
        fprintf(s->out, "t=%llu VIOLATION %s: %s\n", (unsigned long long)s->now,
                sim_viol_names[kind], s->viol_msg);
}

struct sim_inst *sim_inst_at(struct sim *s, px_inst_t i)
{
    if (i >= s->inst_cap) {
        size_t cap = s->inst_cap ? s->inst_cap : 64;
        while (cap <= i)
            cap *= 2;
        struct sim_inst *p = realloc(s->inst, cap * sizeof(*p));
        PX_ASSERT(p != NULL);
        memset(p + s->inst_cap, 0, (cap - s->inst_cap) * sizeof(*p));
        s->inst = p;
        s->inst_cap = cap;
    }
    return &s->inst[i];
}

static bool sim_value_eq(const struct px_value *a, const struct px_value *b)
{
    return a->word == b->word && a->client_id == b->client_id && a->seq == b->seq;
}

static int sim_popcount(uint64_t x)
{
    return __builtin_popcountll(x);
}

void sim_note_accepted(struct sim *s, uint16_t id, const struct px_rec *r)
{
    if (!(s->cfg.roles[id] & PX_ROLE_ACCEPTOR))
        return;
    struct sim_inst *in = sim_inst_at(s, r->instance);
    struct sim_acc_rec *a = NULL;
    for (uint32_t k = 0; k < in->accs_len; k++)
        if (in->accs[k].ballot == r->ballot)
            a = &in->accs[k];
    if (a == NULL) {
        if (in->accs_len == in->accs_cap) {
            in->accs_cap = in->accs_cap ? 2 * in->accs_cap : 4;
            in->accs = realloc(in->accs, in->accs_cap * sizeof(*in->accs));
            PX_ASSERT(in->accs != NULL);
        }
        a = &in->accs[in->accs_len++];
        *a = (struct sim_acc_rec){.ballot = r->ballot, .value = r->value};
    } else if (!sim_value_eq(&a->value, &r->value)) {
        sim_violate(s, SIM_V_AGREEMENT,
                    "instance %llu: two values accepted at one ballot %llx (node %u)",
                    (unsigned long long)r->instance, (unsigned long long)r->ballot, id);
        return;
    }
    a->acceptors |= 1ull << id;
    if (sim_popcount(a->acceptors) < (int)(s->acceptors / 2 + 1))
        return;
    if (in->q_chosen && !sim_value_eq(&in->q_value, &a->value))
        sim_violate(s, SIM_V_AGREEMENT,
                    "instance %llu: quorums accepted two values (%u,%u) and (%u,%u)",
                    (unsigned long long)r->instance, px_value_client(&in->q_value), in->q_value.seq,
                    px_value_client(&a->value), a->value.seq);
    in->q_chosen = true;
    in->q_value = a->value;
}

/* Validity: a no-op, or a value the client submitted, unchanged. Returns its round or 0. */
static uint32_t sim_check_valid(struct sim *s, uint16_t id, px_inst_t i, const struct px_value *v)
{
    uint32_t c = px_value_client(v);
    if (v->client_id == 0) {
        if (v->word != 0)
            sim_violate(s, SIM_V_VALIDITY, "node %u decided a no-op with increment %llu at %llu",
                        id, (unsigned long long)v->word, (unsigned long long)i);
        return 0;
    }
    uint32_t round = 0;
    if (c <= s->clients && v->seq >= 1 && v->seq <= SIM_ROUNDS_MAX)
        round = (uint32_t)s->seq_round[c][v->seq];
    /* The flag says whether the command travels beside the value: it must say what the client
     * submitted (a request is one command). */
    bool payload = round != 0 && s->req[round].cmd_len > CMD_INLINE_BYTES;
    if (round == 0 || s->req[round].sent_at == 0 || s->req[round].increment != v->word ||
        payload != cmd_has_payload(v)) {
        sim_violate(s, SIM_V_VALIDITY,
                    "node %u decided (%u,%u,+%llu%s) at %llu, which was never submitted", id, c,
                    v->seq, (unsigned long long)v->word, cmd_has_payload(v) ? ", long" : "",
                    (unsigned long long)i);
        return 0;
    }
    return round;
}

/* The history's digest chain (px.h, px_history_apply), on the checker's side: `d` extended by
 * the request (client, seq) with word `word` applied at instance i. */
static uint64_t sim_digest_step(uint64_t d, px_inst_t i, uint32_t client, uint32_t seq,
                                uint64_t word)
{
    d = px_mix64(d ^ i);
    d = px_mix64(d ^ (((uint64_t)client << 32) | seq));
    return px_mix64(d ^ word);
}

/* Extend the reference state machine over the contiguous chosen prefix. */
static void sim_extend_ref(struct sim *s)
{
    for (;;) {
        px_inst_t i = s->ref_upto + 1;
        if (i >= s->inst_cap || !s->inst[i].chosen)
            return;
        struct sim_inst *in = &s->inst[i];
        uint64_t value = i == 1 ? 1 : s->inst[i - 1].ref_value;
        uint64_t reqs = i == 1 ? 0 : s->inst[i - 1].ref_requests;
        uint64_t digest = i == 1 ? 0 : s->inst[i - 1].ref_digest;
        if (in->value.client_id != 0) {
            uint32_t c = px_value_client(&in->value);
            uint32_t round = (uint32_t)s->seq_round[c][in->value.seq];
            if (s->req[round].decided == i) { /* first time in the log: it counts */
                value += in->value.word;
                reqs++;
                digest = sim_digest_step(digest, i, c, in->value.seq, in->value.word);
            }
        }
        in->ref_value = value;
        in->ref_requests = reqs;
        in->ref_digest = digest;
        in->have_ref = true;
        s->ref_upto = i;
    }
}

bool sim_ref_at(const struct sim *s, px_inst_t i, uint64_t *value, uint64_t *requests,
                uint64_t *digest)
{
    if (i == 0) {
        *value = 1; /* F(1) */
        *requests = 0;
        *digest = 0;
        return true;
    }
    if (i > s->ref_upto || i >= s->inst_cap || !s->inst[i].have_ref)
        return false;
    *value = s->inst[i].ref_value;
    *requests = s->inst[i].ref_requests;
    *digest = s->inst[i].ref_digest;
    return true;
}

void sim_note_decided(struct sim *s, uint16_t id, px_inst_t i, const struct px_value *v)
{
    PX_ASSERT(i > 0);
    struct sim_inst *in = sim_inst_at(s, i);
    if (in->chosen) {
        if (!sim_value_eq(&in->value, v))
            sim_violate(s, SIM_V_AGREEMENT,
                        "instance %llu: node %u decided (%u,%u) but node %u decided (%u,%u)",
                        (unsigned long long)i, id, px_value_client(v), v->seq, in->first_node,
                        px_value_client(&in->value), in->value.seq);
        return;
    }
    uint32_t round = sim_check_valid(s, id, i, v);
    if (s->viol != SIM_V_NONE)
        return;
    if (!in->q_chosen || !sim_value_eq(&in->q_value, v)) {
        sim_violate(s, SIM_V_AGREEMENT,
                    "instance %llu: node %u decided (%u,%u) that no quorum of acceptors "
                    "durably accepted",
                    (unsigned long long)i, id, px_value_client(v), v->seq);
        return;
    }
    in->chosen = true;
    in->value = *v;
    in->first_node = id;
    if (i > s->decided_max)
        s->decided_max = i;
    if (round != 0 && (s->req[round].decided == 0 || i < s->req[round].decided))
        s->req[round].decided = i;
    sim_extend_ref(s);
}

void sim_check_apply(struct sim *s, uint16_t id, const struct px_applied *a, px_inst_t snapshot)
{
    struct sim_node *nd = &s->node[id];
    /* A batch that installed a snapshot may jump: px_ready.snapshot names only the last one
     * of the batch, and entries may be applied between two snapshots. Increasing still holds;
     * the state check after the batch verifies where the jump landed. */
    bool jump = snapshot != 0 && a->instance <= snapshot + 1 && a->instance > nd->last_applied;
    if (a->instance != nd->last_applied + 1 && !jump) {
        sim_violate(s, SIM_V_ORDER, "node %u applied instance %llu after %llu", id,
                    (unsigned long long)a->instance, (unsigned long long)nd->last_applied);
        return;
    }
    nd->last_applied = a->instance;
    sim_note_decided(s, id, a->instance, &a->value);
    if (s->viol != SIM_V_NONE || a->value.client_id == 0)
        return;
    uint32_t round = (uint32_t)s->seq_round[px_value_client(&a->value)][a->value.seq];
    struct sim_req *q = &s->req[round];
    bool dup = q->decided < a->instance;
    if (a->duplicate != dup) {
        sim_violate(s, SIM_V_ONCE,
                    "node %u applied request (%u,%u) at %llu with duplicate=%d, but it was "
                    "first decided at %llu",
                    id, px_value_client(&a->value), a->value.seq, (unsigned long long)a->instance,
                    a->duplicate, (unsigned long long)q->decided);
        return;
    }
    if (q->done_at == 0) {
        q->done_at = s->now ? s->now : 1;
        s->done++;
    }
}

void sim_check_cmd(struct sim *s, uint16_t id, const struct px_applied *a, const uint8_t *cmd,
                   uint32_t len)
{
    if (s->viol != SIM_V_NONE)
        return;
    const struct px_value *v = &a->value;
    uint32_t c = px_value_client(v), round = 0;
    if (c >= 1 && c <= s->clients && v->seq >= 1 && v->seq <= SIM_ROUNDS_MAX)
        round = (uint32_t)s->seq_round[c][v->seq];
    if (round == 0 || s->req[round].cmd_len <= CMD_INLINE_BYTES) {
        sim_violate(s, SIM_V_COMMAND,
                    "node %u applied (%u,%u) at %llu with bytes beside it (%u), but the client "
                    "submitted no such command",
                    id, c, v->seq, (unsigned long long)a->instance, len);
        return;
    }
    uint32_t want = s->req[round].cmd_len;
    if (cmd == NULL) {
        sim_violate(s, SIM_V_COMMAND,
                    "node %u applied (%u,%u) at %llu without its command's bytes (%u submitted)",
                    id, c, v->seq, (unsigned long long)a->instance, want);
        return;
    }
    if (len != want) {
        sim_violate(s, SIM_V_COMMAND,
                    "node %u applied (%u,%u) at %llu with a command of %u bytes, %u submitted", id,
                    c, v->seq, (unsigned long long)a->instance, len, want);
        return;
    }
    uint32_t at = sim_cmd_mismatch(cmd_key(v), v->word, len, cmd);
    if (at != len) {
        sim_violate(s, SIM_V_COMMAND,
                    "node %u applied (%u,%u) at %llu: byte %u of its %u-byte command differs from "
                    "what the client submitted",
                    id, c, v->seq, (unsigned long long)a->instance, at, len);
        return;
    }
    /* The bytes are the client's; independently of that, one instance holds one command. */
    struct sim_inst *in = sim_inst_at(s, a->instance);
    uint32_t crc = ipc_crc32c(0, cmd, len);
    if (!in->have_cmd) {
        in->have_cmd = true;
        in->cmd_node = id;
        in->cmd_len = len;
        in->cmd_crc = crc;
    } else if (in->cmd_len != len || in->cmd_crc != crc) {
        sim_violate(s, SIM_V_COMMAND,
                    "instance %llu: node %u applied a command of %u bytes (crc %08x), node %u one "
                    "of %u bytes (crc %08x)",
                    (unsigned long long)a->instance, id, len, crc, in->cmd_node, in->cmd_len,
                    in->cmd_crc);
    }
}

void sim_check_commit(struct sim *s, uint16_t id, const struct px_ready *r,
                      px_ballot_t promised_before)
{
    const struct sim_store *st = &s->node[id].st;
    for (px_inst_t k = 0; k < r->recs_len; k++)
        if (r->recs[k].type == PX_REC_DECIDED)
            sim_note_decided(s, id, r->recs[k].instance, &r->recs[k].value);
    for (uint32_t k = 0; k < r->msgs_len && s->viol == SIM_V_NONE; k++) {
        const struct px_msg *m = &r->msgs[k];
        if (m->type != PX_MSG_PROMISE && m->type != PX_MSG_ACCEPTED)
            continue;
        /* A late ACCEPTED of an older ballot is still true (the acceptance came first and is
         * durable, checked below); accepting below the promise is caught at its record. */
        if (m->type == PX_MSG_PROMISE && m->ballot < promised_before) {
            sim_violate(s, SIM_V_PROMISE, "node %u sent %s at ballot %llx below its promise %llx",
                        id, sim_msg_name(m->type), (unsigned long long)m->ballot,
                        (unsigned long long)promised_before);
            return;
        }
        if (m->type == PX_MSG_PROMISE && st->promised < m->ballot) {
            sim_violate(s, SIM_V_PERSIST,
                        "node %u sent promise %llx but its durable promise is %llx", id,
                        (unsigned long long)m->ballot, (unsigned long long)st->promised);
            return;
        }
        if (m->type != PX_MSG_ACCEPTED)
            continue;
        for (px_inst_t i = m->instance; i <= m->u.accepted.hi && i - m->instance < 1u << 20; i++) {
            if (i <= st->truncated || (i < s->inst_cap && s->inst[i].q_chosen))
                continue; /* chosen already: the ack claims nothing a recovery could need */
            if (i >= st->cap || st->acc[i].ballot < m->ballot) {
                sim_violate(s, SIM_V_PERSIST,
                            "node %u sent accepted %llx for instance %llu not durably accepted", id,
                            (unsigned long long)m->ballot, (unsigned long long)i);
                return;
            }
        }
    }
}

void sim_check_state(struct sim *s, uint16_t id)
{
    if (!(s->cfg.roles[id] & PX_ROLE_LEARNER) || s->viol != SIM_V_NONE)
        return;
    const struct px_history *f = px_node_history(s->node[id].px);
    if (f->applied == 0) {
        if (f->digest != 0 || f->requests != 0)
            sim_violate(s, SIM_V_STATE,
                        "node %u applied nothing but holds digest %016llx (%llu requests)", id,
                        (unsigned long long)f->digest, (unsigned long long)f->requests);
        return;
    }
    if (f->applied > s->ref_upto)
        return; /* the checker has not seen this prefix decided yet (cannot happen in order) */
    struct sim_inst *in = &s->inst[f->applied];
    if (f->digest != in->ref_digest || f->requests != in->ref_requests) {
        sim_violate(s, SIM_V_STATE,
                    "node %u at applied %llu holds digest %016llx (%llu requests), the agreed "
                    "log gives %016llx (%llu requests)",
                    id, (unsigned long long)f->applied, (unsigned long long)f->digest,
                    (unsigned long long)f->requests, (unsigned long long)in->ref_digest,
                    (unsigned long long)in->ref_requests);
        return;
    }
    if (!in->have_digest) {
        in->have_digest = true;
        in->digest = f->digest;
    } else if (in->digest != f->digest) {
        sim_violate(s, SIM_V_STATE,
                    "node %u at applied %llu has digest %016llx, another had %016llx", id,
                    (unsigned long long)f->applied, (unsigned long long)f->digest,
                    (unsigned long long)in->digest);
    }
}

static bool sim_connected(const struct sim *s, uint16_t id)
{
    for (uint16_t j = 0; j < s->n; j++)
        if (s->blocked[id][j] || s->blocked[j][id])
            return false;
    return true;
}

void sim_check_leaders(struct sim *s)
{
    for (uint16_t j = 0; j < s->n; j++) {
        struct sim_node *nd = &s->node[j];
        bool lead = nd->up && px_node_is_leader(nd->px);
        if (lead && !nd->was_leader && j != s->last_leader) {
            s->faults[SIM_F_LEADER]++;
            uint16_t old = s->last_leader;
            if (s->cfg.rotate_every > 0 && old != PX_NODE_NONE && s->node[old].up &&
                sim_connected(s, old))
                s->faults[SIM_F_ROTATION]++; /* the old leader was fine: a planned hand-over */
            s->last_leader = j;
            if (s->trace)
                fprintf(s->out, "t=%llu node %u leads\n", (unsigned long long)s->now, j);
        }
        nd->was_leader = lead;
    }
}

/* --sm-lib without a digest callback: the state's digest is one of its snapshot's bytes. */
struct sim_snap_hash {
    struct pxs_writer w;
    uint64_t h;
};

static int sim_snap_hash_write(struct pxs_writer *w, const void *chunk, size_t len)
{
    struct sim_snap_hash *sh = w->opaque;
    const uint8_t *p = chunk;
    for (size_t i = 0; i < len; i++)
        sh->h = (sh->h ^ p[i]) * 0x100000001b3ull; /* FNV-1a */
    return 0;
}

/* The digest the end check compares: the state machine's own, or (a user's state machine
 * without one) a hash of what its snapshot writes. 0 or the snapshot's error in *rc. */
static uint64_t sim_sm_state_digest(const struct sim *s, const struct sm_node *sm, int *rc)
{
    *rc = 0;
    if (s->sm_lib == NULL || sm->sm->digest != NULL)
        return sm_digest(sm);
    struct sim_snap_hash sh = {.w = {.write = sim_snap_hash_write}, .h = 0xcbf29ce484222325ull};
    sh.w.opaque = &sh;
    *rc = sm->sm->snapshot(sm->sm->ctx, &sh.w);
    return sh.h;
}

/* --sm: every learner's state machine stands where its core does, applied every request once,
 * and all of them reached the same state by the same commands (the node's command digest). */
static void sim_sm_check_final(struct sim *s)
{
    uint64_t first_digest = 0;
    const struct sm_node *first = NULL;
    uint16_t first_id = 0;
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        const struct sim_node *nd = &s->node[j];
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER) || !nd->up)
            continue;
        const struct sm_node *sm = nd->drv.sm;
        const struct px_history *f = px_node_history(nd->px);
        if (sm == NULL || sm->index != f->applied || sm->applied != f->requests ||
            (s->sm_lib == NULL && nd->sm_count != sm->applied)) {
            sim_violate(s, SIM_V_FINAL,
                        "node %u: state machine at %llu with %llu commands (its own count %llu),"
                        " the core applied %llu with %llu requests",
                        j, sm ? (unsigned long long)sm->index : 0ull,
                        sm ? (unsigned long long)sm->applied : 0ull,
                        (unsigned long long)nd->sm_count, (unsigned long long)f->applied,
                        (unsigned long long)f->requests);
            return;
        }
        int rc = 0;
        uint64_t digest = sim_sm_state_digest(s, sm, &rc);
        if (rc != 0) {
            sim_violate(s, SIM_V_FINAL, "node %u: the state machine's snapshot returned %d", j, rc);
            return;
        }
        if (first == NULL) {
            first = sm;
            first_id = j;
            first_digest = digest;
        } else if (sm->index == first->index &&
                   (sm->cmd_digest != first->cmd_digest || digest != first_digest)) {
            sim_violate(s, SIM_V_FINAL,
                        "nodes %u and %u: state machines at %llu differ (command digest %llx /"
                        " %llx, %s %llx / %llx)",
                        first_id, j, (unsigned long long)sm->index,
                        (unsigned long long)first->cmd_digest, (unsigned long long)sm->cmd_digest,
                        sm->sm->digest != NULL ? "digest" : "snapshot hash",
                        (unsigned long long)first_digest, (unsigned long long)digest);
        }
    }
}

/* Every learner ends with the history of the agreed log up to its applied index: its requests
 * and digest (computed by the checker from the chosen values, not by the core). */
static void sim_check_final_history(struct sim *s)
{
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER) || (s->node[j].forgot && !s->node[j].up))
            continue;
        const struct px_history *f = px_node_history(s->node[j].px);
        uint64_t value, requests, digest;
        if (!sim_ref_at(s, f->applied, &value, &requests, &digest)) {
            sim_violate(s, SIM_V_FINAL,
                        "node %u ends at applied %llu, but the checker saw instances 1..%llu "
                        "chosen only",
                        j, (unsigned long long)f->applied, (unsigned long long)s->ref_upto);
        } else if (f->requests != requests || f->digest != digest) {
            sim_violate(s, SIM_V_FINAL,
                        "node %u ends at applied %llu with digest %016llx after %llu requests; "
                        "the agreed log gives %016llx after %llu",
                        j, (unsigned long long)f->applied, (unsigned long long)f->digest,
                        (unsigned long long)f->requests, (unsigned long long)digest,
                        (unsigned long long)requests);
        }
    }
}

void sim_check_final(struct sim *s)
{
    if (s->sm_on)
        sim_sm_check_final(s);
    if (s->cc.on) {
        sim_cc_check_final(s);
        sim_check_final_history(s);
        return;
    }
    /* Every round applied once: the learner counted R requests, and the agreed log up to where
     * it stands feeds the Fibonacci state machine F(R+1). */
    uint64_t want = sim_fib(s->submitted + 1);
    for (uint16_t j = 0; j < s->n && s->viol == SIM_V_NONE; j++) {
        if (!(s->cfg.roles[j] & PX_ROLE_LEARNER) || (s->node[j].forgot && !s->node[j].up))
            continue;
        const struct px_history *f = px_node_history(s->node[j].px);
        uint64_t value = 0, requests = 0, digest = 0;
        bool known = sim_ref_at(s, f->applied, &value, &requests, &digest);
        if (f->requests != s->submitted || !known || value != want)
            sim_violate(s, SIM_V_FINAL,
                        "node %u ends at applied %llu after %llu requests, where the agreed log "
                        "gives value %llu%s; F(%u) = %llu after %u",
                        j, (unsigned long long)f->applied, (unsigned long long)f->requests,
                        (unsigned long long)value, known ? "" : " (not all chosen)",
                        s->submitted + 1, (unsigned long long)want, s->submitted);
    }
    sim_check_final_history(s);
}
