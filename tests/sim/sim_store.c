/* sim_store.c: each node's durable store in the simulator -- a memory backend behind struct
 * store_ops (src/store/store_internal.h), so the driver persists through the same store_begin /
 * store_put / store_put_fib / store_commit calls as on sqlite or shm.
 *
 * The durable part is struct sim_store in the node (it outlives the node's crashes, like the shm
 * store's area); the handle the driver holds is the node process's: a batch is staged in it and
 * reaches the durable part only in commit, so a crash before the commit (the handle is closed
 * with the batch open, or never began) loses the batch, and a crash after it keeps the whole
 * batch. Why not the shm backend itself: the checker reads the durable state directly (the
 * promise, each instance's accepted ballot, the truncation point) at every commit, which the
 * shm area's private layout does not offer, and a seed would zero a megabyte per node.
 *
 * The store contract (store.h) holds here too: TRUNCATE t drops every entry <= t, and a record
 * of an instance <= the truncation point is ignored. Each record is checked as it becomes
 * durable: a promise never regresses, nothing is accepted below the promise. A command's bytes
 * (store_put_cmd) are copied when they are put, kept with the record that carries them (a later
 * ACCEPTED of the instance replaces them, as on sqlite) and freed when the entry is truncated,
 * replaced, the batch is discarded or the run ends.
 */
#include "sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct sim_store_handle {
    struct store base;
    struct sim *s;
    uint16_t id;
    bool fib_set;
    struct px_history fib;
    uint32_t recs_len;
    struct px_rec recs[PX_READY_RECS_MAX];  /* one batch: persist_ready puts at most the ready's */
    unsigned char *cmds[PX_READY_RECS_MAX]; /* recs[k]'s command bytes (a copy), or NULL */
    uint32_t cmd_lens[PX_READY_RECS_MAX];
    bool sm_set; /* a state machine's snapshot staged (store_put_sm_snapshot) */
    struct store_sm_snap sm_head;
    uint8_t *sm_bytes;
    size_t sm_len;
};

static struct sim_store_handle *sim_store_of(struct store *st)
{
    return (struct sim_store_handle *)st;
}

static void sim_store_grow(struct sim_store *st, px_inst_t i)
{
    if (i < st->cap)
        return;
    size_t cap = st->cap ? st->cap : 64;
    while (cap <= i)
        cap *= 2;
    st->acc = realloc(st->acc, cap * sizeof(*st->acc));
    st->dec = realloc(st->dec, cap * sizeof(*st->dec));
    PX_ASSERT(st->acc != NULL && st->dec != NULL);
    memset(st->acc + st->cap, 0, (cap - st->cap) * sizeof(*st->acc));
    memset(st->dec + st->cap, 0, (cap - st->cap) * sizeof(*st->dec));
    st->cap = cap;
}

/* Sets a slot to (ballot, value, cmd), freeing the bytes it held; the slot owns cmd from now. */
static void sim_slot_set(struct sim_slot *slot, px_ballot_t ballot, struct px_value value,
                         unsigned char *cmd, uint32_t cmd_len)
{
    free(slot->cmd);
    *slot = (struct sim_slot){ballot, value, cmd, cmd_len};
}

static void sim_store_truncate(struct sim_store *st, px_inst_t upto)
{
    if (upto <= st->truncated)
        return;
    for (px_inst_t i = st->truncated + 1; i <= upto && i < st->cap; i++) {
        sim_slot_set(&st->acc[i], 0, (struct px_value){0, 0, 0}, NULL, 0);
        sim_slot_set(&st->dec[i], 0, (struct px_value){0, 0, 0}, NULL, 0);
    }
    st->truncated = upto;
}

/* One record becomes durable, checking that an acceptor's promise only ever grows. The store
 * takes cmd (the record's bytes, or NULL): kept with the entry or freed. */
static void sim_store_apply(struct sim *s, uint16_t id, const struct px_rec *r, unsigned char *cmd,
                            uint32_t cmd_len)
{
    struct sim_store *st = &s->node[id].st;
    if ((r->type == PX_REC_ACCEPTED || r->type == PX_REC_DECIDED) && r->instance <= st->truncated) {
        if (r->type == PX_REC_ACCEPTED)
            sim_note_accepted(s, id, r); /* it happened; the store drops it by definition */
        free(cmd);
        return;
    }
    PX_ASSERT(cmd == NULL || r->type == PX_REC_ACCEPTED || r->type == PX_REC_DECIDED);
    switch (r->type) {
    case PX_REC_PROMISE:
        if (r->ballot < st->promised)
            sim_violate(s, SIM_V_PROMISE, "node %u persisted promise %llx below its promise %llx",
                        id, (unsigned long long)r->ballot, (unsigned long long)st->promised);
        st->promised = r->ballot;
        break;
    case PX_REC_ACCEPTED:
        sim_store_grow(st, r->instance);
        if (r->ballot < st->promised || r->ballot < st->acc[r->instance].ballot)
            sim_violate(s, SIM_V_PROMISE,
                        "node %u accepted instance %llu at ballot %llx below promise %llx", id,
                        (unsigned long long)r->instance, (unsigned long long)r->ballot,
                        (unsigned long long)st->promised);
        sim_slot_set(&st->acc[r->instance], r->ballot, r->value, cmd, cmd_len);
        sim_note_accepted(s, id, r);
        break;
    case PX_REC_DECIDED:
        sim_store_grow(st, r->instance);
        sim_slot_set(&st->dec[r->instance], 1, r->value, cmd, cmd_len);
        break;
    case PX_REC_TRUNCATE:
        sim_store_truncate(st, r->instance);
        break;
    default:
        sim_violate(s, SIM_V_PERSIST, "node %u: unknown record type %u", id, r->type);
    }
}

/* store.h's store_load order: the truncation point, then every entry kept in instance order,
 * ACCEPTED before DECIDED. */
static int sim_store_load(struct store *base, struct px_durable *d, store_each_fn each, void *ctx)
{
    struct sim_store_handle *h = sim_store_of(base);
    const struct sim_store *st = &h->s->node[h->id].st;
    d->promised = st->promised;
    d->fib = st->fib;
    if (each == NULL)
        return 0;
    store_emit_truncate(st->truncated, each, ctx);
    for (px_inst_t i = st->truncated + 1; i < st->cap; i++) {
        if (st->acc[i].ballot != 0) {
            struct px_rec r = {.type = PX_REC_ACCEPTED,
                               .instance = i,
                               .ballot = st->acc[i].ballot,
                               .value = st->acc[i].value};
            each(ctx, &r, st->acc[i].cmd, st->acc[i].cmd_len);
        }
        if (st->dec[i].ballot != 0) {
            struct px_rec r = {.type = PX_REC_DECIDED, .instance = i, .value = st->dec[i].value};
            each(ctx, &r, st->dec[i].cmd, st->dec[i].cmd_len);
        }
    }
    return 0;
}

/* Forgets the staged batch (its copies of command bytes). */
static void sim_store_unstage(struct sim_store_handle *h)
{
    for (uint32_t k = 0; k < h->recs_len; k++) {
        free(h->cmds[k]);
        h->cmds[k] = NULL;
    }
    h->recs_len = 0;
    h->fib_set = false;
    free(h->sm_bytes);
    h->sm_bytes = NULL;
    h->sm_set = false;
}

static int sim_store_begin(struct store *base)
{
    sim_store_unstage(sim_store_of(base));
    return 0;
}

static int sim_store_put(struct store *base, const struct px_rec *r)
{
    struct sim_store_handle *h = sim_store_of(base);
    PX_ASSERT(h->recs_len < PX_READY_RECS_MAX);
    h->cmds[h->recs_len] = NULL;
    h->cmd_lens[h->recs_len] = 0;
    h->recs[h->recs_len++] = *r;
    return 0;
}

/* The bytes are copied now (store.h: the caller's buffer is free once this returns). */
static int sim_store_put_cmd(struct store *base, const struct px_rec *r, const void *cmd,
                             uint32_t cmd_len)
{
    struct sim_store_handle *h = sim_store_of(base);
    PX_ASSERT(h->recs_len < PX_READY_RECS_MAX);
    unsigned char *copy = malloc(cmd_len > 0 ? cmd_len : 1); /* non-NULL: a command, maybe empty */
    PX_ASSERT(copy != NULL);
    if (cmd_len > 0)
        memcpy(copy, cmd, cmd_len);
    h->cmds[h->recs_len] = copy;
    h->cmd_lens[h->recs_len] = cmd_len;
    h->recs[h->recs_len++] = *r;
    return 0;
}

static int sim_store_put_fib(struct store *base, const struct px_history *f)
{
    struct sim_store_handle *h = sim_store_of(base);
    h->fib = *f;
    h->fib_set = true;
    return 0;
}

static int sim_store_commit(struct store *base)
{
    struct sim_store_handle *h = sim_store_of(base);
    for (uint32_t k = 0; k < h->recs_len; k++) {
        sim_store_apply(h->s, h->id, &h->recs[k], h->cmds[k], h->cmd_lens[k]);
        h->cmds[k] = NULL; /* the store's now */
    }
    if (h->fib_set)
        h->s->node[h->id].st.fib = h->fib;
    struct sim_store *st = &h->s->node[h->id].st;
    if (h->sm_set) {
        free(st->sm_bytes);
        st->sm_has = true;
        st->sm_head = h->sm_head;
        st->sm_bytes = h->sm_bytes;
        st->sm_len = h->sm_len;
        h->sm_bytes = NULL;
        h->sm_set = false;
        if (st->truncated > st->sm_head.index)
            sim_violate(h->s, SIM_V_PERSIST,
                        "node %u: log truncated at %llu above its state machine's snapshot at %llu",
                        h->id, (unsigned long long)st->truncated,
                        (unsigned long long)st->sm_head.index);
    }
    h->recs_len = 0;
    h->fib_set = false;
    return 0;
}

static int sim_store_put_sm(struct store *base, const struct store_sm_snap *head, const void *bytes,
                            size_t len)
{
    struct sim_store_handle *h = sim_store_of(base);
    free(h->sm_bytes);
    h->sm_bytes = malloc(len > 0 ? len : 1);
    PX_ASSERT(h->sm_bytes != NULL);
    if (len > 0)
        memcpy(h->sm_bytes, bytes, len);
    h->sm_len = len;
    h->sm_head = *head;
    h->sm_set = true;
    return 0;
}

static int sim_store_load_sm(struct store *base, struct store_sm_snap *head, void **bytes,
                             size_t *len, bool *found)
{
    struct sim_store_handle *h = sim_store_of(base);
    const struct sim_store *st = &h->s->node[h->id].st;
    if (!st->sm_has)
        return 0;
    *bytes = malloc(st->sm_len > 0 ? st->sm_len : 1);
    PX_ASSERT(*bytes != NULL);
    if (st->sm_len > 0)
        memcpy(*bytes, st->sm_bytes, st->sm_len);
    *len = st->sm_len;
    *head = st->sm_head;
    *found = true;
    return 0;
}

static void sim_store_close(struct store *base)
{
    struct sim_store_handle *h = sim_store_of(base);
    sim_store_unstage(h); /* an open batch is discarded: it never reached the store */
    free(h);
}

static const struct store_ops sim_store_ops = {
    .load = sim_store_load,
    .begin = sim_store_begin,
    .put = sim_store_put,
    .put_cmd = sim_store_put_cmd,
    .put_fib = sim_store_put_fib,
    .commit = sim_store_commit,
    .put_sm = sim_store_put_sm,
    .load_sm = sim_store_load_sm,
    .close = sim_store_close,
};

void sim_store_free(struct sim_store *st)
{
    for (size_t i = 0; i < st->cap; i++) {
        free(st->acc[i].cmd);
        free(st->dec[i].cmd);
    }
    free(st->acc);
    free(st->dec);
    free(st->sm_bytes);
    memset(st, 0, sizeof(*st));
}

void sim_store_wipe(struct sim *s, uint16_t id)
{
    PX_ASSERT(!s->node[id].up);
    sim_store_free(&s->node[id].st);
}

struct store *sim_store_open(struct sim *s, uint16_t id)
{
    struct sim_store_handle *h = malloc(sizeof(*h));
    PX_ASSERT(h != NULL);
    memset(&h->base, 0, sizeof(h->base));
    h->base.ops = &sim_store_ops;
    /* Created here, not through store_open (kind is only its dispatch key): the closest
     * backend by durability -- memory that outlives the node, not the run. */
    h->base.kind = STORE_SHM;
    h->base.node_id = id;
    h->base.nodes = s->n;
    snprintf(h->base.name, sizeof(h->base.name), "sim node %u store", id);
    h->s = s;
    h->id = id;
    h->recs_len = 0;
    h->fib_set = false;
    h->sm_set = false;
    h->sm_bytes = NULL;
    return &h->base;
}
