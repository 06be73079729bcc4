/* store_shm.c: the shared-memory backend.
 *
 * Area layout (one node's area; 64-byte aligned; zero-filled before first use):
 *   struct shm_hdr   magic, layout version, sizes, `committed`, and two struct shm_ctl
 *   struct shm_slot  [entries_max] log slots, instance i lives in slot i % entries_max
 *
 * Crash safety (the writer may be SIGKILLed at any instruction; the only reader is a later
 * incarnation of the same node, after the writer died):
 *   - `committed` = sequence number C of the last committed batch. ctl[C & 1] holds that
 *     batch's promised ballot, truncation point and fib; the other ctl is free.
 *   - every slot has two copies, each stamped with the batch sequence that wrote it. The valid
 *     version of a slot is its copy with the highest stamp <= C. Batch C + 1 writes only the
 *     other copy (stamp C + 1), so the valid copy is never touched before the publish.
 *   - store_commit writes ctl[(C + 1) & 1], then publishes C + 1 with one release store. Before
 *     it, a reopened store sees batch C exactly; after it, batch C + 1 exactly.
 *   - at open, copies stamped > C (left by a batch that died before its commit) are cleared,
 *     so the next batch C + 1 never mistakes them for its own.
 * Bound: live instances are (truncated, truncated + entries_max]; an instance beyond that finds
 * its slot held by a live instance and fails with -ENOSPC.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/arch.h>
#include <urcu/compiler.h>
#include <urcu/system.h>

#include "store_internal.h"

#define SHM_MAGIC UINT64_C(0x31306d6873787070) /* "ppxshm01" little endian */
#define SHM_ALIGN 64                           /* cache line; every struct below is a multiple */

enum { SHM_ACCEPTED = 1u << 0, SHM_DECIDED = 1u << 1 };

struct shm_ctl { /* one committed state; double buffered */
    uint64_t seq;
    px_ballot_t promised;
    px_inst_t truncated;
    uint64_t reserved;
    struct px_fib fib;
};

struct shm_copy {   /* one version of one log slot */
    uint64_t stamp; /* sequence of the batch that wrote it; 0 = empty */
    px_inst_t instance;
    px_ballot_t acc_ballot;
    uint32_t flags; /* SHM_ACCEPTED | SHM_DECIDED */
    uint32_t reserved;
    struct px_value acc_value;
    struct px_value dec_value;
};

struct shm_slot {
    struct shm_copy copy[2];
};

struct shm_hdr {
    uint64_t magic; /* written last at format, with a release store */
    uint32_t layout_version;
    uint32_t entries_max;
    uint16_t node_id, nodes;
    uint32_t fib_bytes;
    uint64_t committed; /* published last by store_commit, with a release store */
    struct shm_ctl ctl[2] __attribute__((aligned(SHM_ALIGN)));
};

static_assert(sizeof(struct shm_copy) == 64, "one slot copy is one cache line");
static_assert(sizeof(struct shm_slot) % SHM_ALIGN == 0, "slots stay cache-line aligned");
static_assert(sizeof(struct shm_hdr) % SHM_ALIGN == 0, "slots start cache-line aligned");

struct store_shm {
    struct store base; /* first: struct store * <-> struct store_shm * */
    struct shm_hdr *hdr;
    struct shm_slot *slots;
    uint64_t seq;         /* committed sequence C */
    struct shm_ctl batch; /* the open batch's state, written to the free ctl at commit */
};

static struct store_shm *shm_of(struct store *s)
{
    STORE_ASSERT(s->kind == STORE_SHM);
    return (struct store_shm *)(void *)s;
}

size_t store_shm_bytes(uint32_t entries_max)
{
    STORE_ASSERT(entries_max >= 1);
    return sizeof(struct shm_hdr) + (size_t)entries_max * sizeof(struct shm_slot);
}

/* The slot's committed copy (highest stamp in 1..seq), or NULL. */
static struct shm_copy *shm_valid(struct shm_slot *slot, uint64_t seq)
{
    struct shm_copy *best = NULL;
    for (int k = 0; k < 2; k++) {
        struct shm_copy *c = &slot->copy[k];
        if (c->stamp != 0 && c->stamp <= seq && (best == NULL || c->stamp > best->stamp))
            best = c;
    }
    return best;
}

static void shm_format(struct shm_hdr *h, size_t bytes, const struct store_params *p,
                       uint32_t entries_max)
{
    /* The area may hold the remains of a format that died before its magic was written. */
    memset(h, 0, bytes);
    h->layout_version = STORE_LAYOUT_VERSION;
    h->entries_max = entries_max;
    h->node_id = p->node_id;
    h->nodes = p->nodes;
    h->fib_bytes = (uint32_t)sizeof(struct px_fib);
    /* Release: the fields above are complete before the magic says the area is formatted;
     * pairs with the read barrier after the magic load in shm_check. */
    cmm_smp_wmb();
    CMM_STORE_SHARED(h->magic, SHM_MAGIC);
}

static int shm_check(struct store_shm *m, const struct store_params *p)
{
    struct shm_hdr *h = m->hdr;
    uint64_t magic = CMM_LOAD_SHARED(h->magic);
    cmm_smp_rmb(); /* pairs with the release in shm_format */
    if (magic != SHM_MAGIC)
        return store_fail(&m->base, -EBADMSG, "not a store area (magic %#llx)",
                          (unsigned long long)magic);
    if (h->layout_version != STORE_LAYOUT_VERSION || h->fib_bytes != sizeof(struct px_fib))
        return store_fail(&m->base, -EPROTO,
                          "layout version %u (px_fib %u bytes), this build reads version %d "
                          "(px_fib %zu bytes)",
                          h->layout_version, h->fib_bytes, STORE_LAYOUT_VERSION,
                          sizeof(struct px_fib));
    if (h->nodes != p->nodes || h->node_id != p->node_id)
        return store_fail(&m->base, -EINVAL,
                          "the store was made for node %u of %u, opened as node %u of %u",
                          h->node_id, h->nodes, p->node_id, p->nodes);
    if (h->entries_max == 0 || store_shm_bytes(h->entries_max) > p->shm_bytes)
        return store_fail(&m->base, -EBADMSG, "entries_max %u does not fit the %zu-byte area",
                          h->entries_max, p->shm_bytes);
    return 0;
}

/* Reads `committed` and clears the copies of a batch that died before its commit. */
static int shm_recover(struct store_shm *m)
{
    struct shm_hdr *h = m->hdr;
    m->seq = CMM_LOAD_SHARED(h->committed);
    cmm_smp_rmb(); /* pairs with the release in shm_commit: ctl and slots after the seq */
    if (h->ctl[m->seq & 1].seq != m->seq)
        return store_fail(&m->base, -EBADMSG, "committed batch %llu has state of batch %llu",
                          (unsigned long long)m->seq, (unsigned long long)h->ctl[m->seq & 1].seq);
    for (uint32_t i = 0; i < h->entries_max; i++)
        for (int k = 0; k < 2; k++)
            if (m->slots[i].copy[k].stamp > m->seq)
                CMM_STORE_SHARED(m->slots[i].copy[k].stamp, 0);
    m->base.entries_max = h->entries_max;
    return 0;
}

static void shm_close(struct store *s)
{
    free(shm_of(s)); /* the area belongs to the caller; an open batch is simply not published */
}

static void shm_emit(struct store_shm *m, const struct shm_copy *c, store_each_fn each, void *ctx)
{
    struct px_rec r;
    if (each == NULL)
        return;
    if (c->flags & SHM_ACCEPTED) {
        memset(&r, 0, sizeof(r));
        r.type = PX_REC_ACCEPTED;
        r.instance = c->instance;
        r.ballot = c->acc_ballot;
        r.value = c->acc_value;
        each(ctx, &r);
    }
    if (c->flags & SHM_DECIDED) {
        memset(&r, 0, sizeof(r));
        r.type = PX_REC_DECIDED;
        r.instance = c->instance;
        r.value = c->dec_value;
        each(ctx, &r);
    }
    (void)m;
}

static int shm_load(struct store *s, struct px_durable *d, store_each_fn each, void *ctx)
{
    struct store_shm *m = shm_of(s);
    const struct shm_ctl *ctl = &m->hdr->ctl[m->seq & 1];
    uint32_t n = m->hdr->entries_max;
    d->promised = ctl->promised;
    d->fib = ctl->fib;
    store_emit_truncate(ctl->truncated, each, ctx);
    /* Live instances are (truncated, truncated + n]: walk them in instance order. */
    for (uint64_t k = 1; k <= n; k++) {
        px_inst_t inst = ctl->truncated + k;
        const struct shm_copy *c = shm_valid(&m->slots[inst % n], m->seq);
        if (c != NULL && c->instance == inst)
            shm_emit(m, c, each, ctx);
    }
    return 0;
}

static int shm_begin(struct store *s)
{
    struct store_shm *m = shm_of(s);
    m->batch = m->hdr->ctl[m->seq & 1];
    m->batch.seq = m->seq + 1;
    return 0;
}

/* Rewrites a copy that is not the committed one. The stamp goes first, in one 8-byte store,
 * so at no moment does dst carry a stamp a reader could take for committed (it holds its old
 * stamp, below the committed copy's, or `stamp` > committed); the content follows. */
static void shm_copy_set(struct shm_copy *dst, uint64_t stamp, const struct shm_copy *content,
                         px_inst_t inst)
{
    CMM_STORE_SHARED(dst->stamp, stamp);
    cmm_barrier(); /* the compiler keeps the content stores after the stamp store */
    dst->instance = inst;
    dst->acc_ballot = content != NULL ? content->acc_ballot : 0;
    dst->flags = content != NULL ? content->flags : 0;
    dst->reserved = 0;
    dst->acc_value = content != NULL ? content->acc_value : (struct px_value){0, 0, 0};
    dst->dec_value = content != NULL ? content->dec_value : (struct px_value){0, 0, 0};
}

/* The copy batch seq + 1 writes for instance inst, set up with the slot's current content;
 * NULL when the slot holds another live instance (the ring is full). */
static struct shm_copy *shm_target(struct store_shm *m, px_inst_t inst)
{
    uint64_t next = m->batch.seq;
    struct shm_slot *slot = &m->slots[inst % m->hdr->entries_max];
    struct shm_copy *cur = shm_valid(slot, m->seq);
    struct shm_copy *mine = slot->copy[0].stamp == next   ? &slot->copy[0]
                            : slot->copy[1].stamp == next ? &slot->copy[1]
                                                          : NULL;
    const struct shm_copy *base = mine != NULL ? mine : cur;
    if (base != NULL && base->instance != inst && base->instance > m->batch.truncated)
        return NULL;
    if (mine == NULL) {
        /* The copy that is not the committed one; its stamp is below cur's or 0. */
        mine = cur == &slot->copy[0] ? &slot->copy[1] : &slot->copy[0];
        shm_copy_set(mine, next, cur != NULL && cur->instance == inst ? cur : NULL, inst);
    } else if (mine->instance != inst) {
        shm_copy_set(mine, next, NULL, inst); /* held a dead instance earlier in this batch */
    }
    return mine;
}

static int shm_put_entry(struct store_shm *m, const struct px_rec *r)
{
    if (r->instance <= m->batch.truncated)
        return 0;
    struct shm_copy *c = shm_target(m, r->instance);
    if (c == NULL)
        return store_fail(&m->base, -ENOSPC,
                          "log area full: instance %llu needs a slot held by a live instance "
                          "(truncated at %llu, %u slots)",
                          (unsigned long long)r->instance, (unsigned long long)m->batch.truncated,
                          m->hdr->entries_max);
    if (r->type == PX_REC_ACCEPTED) {
        c->acc_ballot = r->ballot;
        c->acc_value = r->value;
        c->flags |= SHM_ACCEPTED;
    } else {
        c->dec_value = r->value;
        c->flags |= SHM_DECIDED;
    }
    return 0;
}

static int shm_put(struct store *s, const struct px_rec *r)
{
    struct store_shm *m = shm_of(s);
    switch (r->type) {
    case PX_REC_PROMISE:
        m->batch.promised = r->ballot;
        return 0;
    case PX_REC_ACCEPTED:
    case PX_REC_DECIDED:
        return shm_put_entry(m, r);
    case PX_REC_TRUNCATE:
        if (r->instance > m->batch.truncated)
            m->batch.truncated = r->instance;
        return 0;
    }
    STORE_ASSERT(!"unknown record type");
    return -EINVAL;
}

static int shm_put_fib(struct store *s, const struct px_fib *f)
{
    shm_of(s)->batch.fib = *f;
    return 0;
}

static int shm_commit(struct store *s)
{
    struct store_shm *m = shm_of(s);
    uint64_t next = m->batch.seq;
    STORE_ASSERT(next == m->seq + 1);
    m->hdr->ctl[next & 1] = m->batch; /* the free buffer: not the committed ctl[seq & 1] */
    /* Release: the batch's slot copies and ctl are complete before `committed` names them;
     * pairs with the read barrier after the load of `committed` in shm_recover. */
    cmm_smp_wmb();
    CMM_STORE_SHARED(m->hdr->committed, next);
    m->seq = next;
    return 0;
}

static const struct store_ops shm_ops = {
    .load = shm_load,
    .begin = shm_begin,
    .put = shm_put,
    .put_fib = shm_put_fib,
    .commit = shm_commit,
    .close = shm_close,
};

int store_shm_open(const struct store_params *p, struct store **out, char *err, size_t err_len)
{
    if (p->shm_area == NULL || (uintptr_t)p->shm_area % SHM_ALIGN != 0 ||
        p->shm_bytes < store_shm_bytes(1))
        return store_fail_buf(err, err_len, -EINVAL,
                              "shm store of node %u: area %p of %zu bytes is not 64-byte "
                              "aligned or smaller than %zu bytes",
                              (unsigned)p->node_id, p->shm_area, p->shm_bytes, store_shm_bytes(1));
    struct store_shm *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return store_fail_buf(err, err_len, -ENOMEM, "shm store: out of memory");
    m->base.ops = &shm_ops;
    m->base.kind = STORE_SHM;
    m->base.node_id = p->node_id;
    m->base.nodes = p->nodes;
    snprintf(m->base.name, sizeof(m->base.name), "shm store of node %u", (unsigned)p->node_id);
    m->hdr = p->shm_area;
    m->slots = (struct shm_slot *)(void *)((char *)p->shm_area + sizeof(struct shm_hdr));
    if (CMM_LOAD_SHARED(m->hdr->magic) == 0) {
        size_t fit = (p->shm_bytes - sizeof(struct shm_hdr)) / sizeof(struct shm_slot);
        uint32_t entries = fit > UINT32_MAX ? UINT32_MAX : (uint32_t)fit;
        shm_format(m->hdr, store_shm_bytes(entries), p, entries);
    }
    int rc = shm_check(m, p);
    if (rc == 0)
        rc = shm_recover(m);
    if (rc != 0) {
        store_fail_buf(err, err_len, rc, "%s", m->base.err);
        free(m);
        return rc;
    }
    *out = &m->base;
    return 0;
}
