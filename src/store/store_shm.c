/* store_shm.c: the shared-memory backend.
 *
 * Area layout (one node's area; 64-byte aligned; zero-filled before first use):
 *   struct shm_hdr   magic, layout version, sizes, `committed`, and two struct shm_ctl
 *   struct shm_slot  [entries_max] log slots, instance i lives in slot i % entries_max
 *   struct shm_refs  [2 * entries_max] the command records each slot copy names
 *   command area     arena_bytes (0 when the store keeps no commands longer than 8 bytes)
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
 * Commands longer than 8 bytes (store_put_cmd) live in the command area, a ring of records
 * addressed by a 64-bit position that only grows (the byte at position p is at p % arena_bytes):
 *   - a record is a 32-byte struct shm_rec (stamp, instance, length, CRC-32C of the bytes, its
 *     own check over its position) and the command's bytes, rounded up to 64 bytes, never
 *     split by the ring's end (the end's remainder becomes a PAD record);
 *   - a slot copy whose value carries a command names its record (struct shm_ref: position,
 *     length, CRC, in the copy's struct shm_refs), and the copy's check covers its refs then, so
 *     it covers which bytes are its command;
 *   - the committed ctl holds the live range [arena_tail, arena_head). A batch appends at
 *     arena_head only: bytes past the committed head are free, so a batch that dies before its
 *     commit leaves the committed records untouched and its own are never read;
 *   - at store_begin the tail moves past records the committed state no longer names (their
 *     instance truncated, or their copy replaced); a live record stops it, so space comes back
 *     in ring order. A record the slot already names for the same value and bytes (a DECIDED
 *     of what it accepted, an ACCEPT of it at a later ballot) is named again, not copied;
 *   - a state machine's snapshot (store_put_sm_snapshot) is one record too (its struct
 *     store_sm_snap, then the state), named by the ctl's `snap`;
 *   - a record that does not fit the free space is -ENOSPC ("command area full"), and the
 *     batch fails like any full store: nothing of it is published.
 * A store opened without a command area (arena_bytes 0) refuses commands (-EMSGSIZE) and
 * snapshots (-ENOTSUP).
 *
 * Damage (a stray write into the segment, garbage) is detected and named, never taken for
 * content or for a full ring: -EBADMSG with a line saying "damaged". Every committed piece
 * carries a 32-bit check (shm_sum, CRC-32C; random damage passes with probability 2^-32):
 *   - the header's fixed fields (hdr_check);
 *   - the committed ctl (ctl.check), and `committed` must name it;
 *   - every slot copy stamped 1..C (copy.check, over its position too, so a copy moved to
 *     another slot fails). Copies stamped 0 or > C are free and never read;
 *   - which copies are the valid ones: ctl.slots_sum is the XOR of the checks of every slot's
 *     valid copy, so damage that turns a valid copy into a free one (its stamp) or an older
 *     copy into the valid one is caught too.
 * Open and load check everything (one pass over the slots); a batch checks the header,
 * `committed` and the ctl at begin and commit, and every copy whose content or instance it
 * uses. Damage elsewhere is found at the next open (its only reader, a restarted incarnation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/arch.h>
#include <urcu/compiler.h>
#include <urcu/system.h>

#include "ipc/check.h"
#include "store_internal.h"

#define SHM_MAGIC UINT64_C(0x33306d6873787070) /* "ppxshm03" little endian: command area */
#define SHM_ALIGN 64                           /* cache line; every struct below is a multiple */
/* Seeds of shm_sum, one per kind of record, so a record copied over another kind fails. */
#define SHM_SEED_HDR  0x68647221u /* "hdr!" */
#define SHM_SEED_CTL  0x63746c21u /* "ctl!" */
#define SHM_SEED_COPY 0x63707921u /* "cpy!" */
#define SHM_SEED_REC  0x72656321u /* "rec!" */
#define SHM_SEED_CMD  0x636d6421u /* "cmd!": the bytes of a command */
#define SHM_REC_ALIGN 64u

enum { SHM_ACCEPTED = 1u << 0, SHM_DECIDED = 1u << 1 };
enum { SHM_REC_CMD = 1, SHM_REC_PAD = 2, SHM_REC_SNAP = 3 };

struct shm_ref { /* a record of the command area: a value's command, a snapshot */
    uint64_t pos;
    uint32_t len;
    uint32_t crc; /* CRC-32C of the bytes (SHM_SEED_CMD) */
};

struct shm_ctl { /* one committed state; double buffered */
    uint64_t seq;
    px_ballot_t promised;
    px_inst_t truncated;
    uint64_t arena_tail, arena_head; /* live records of the command area: [tail, head) */
    struct shm_ref snap;             /* the state machine's snapshot record (len 0: none) */
    struct px_history fib;
    uint32_t slots_sum; /* XOR of the checks of every slot's valid copy */
    uint32_t check;     /* shm_sum of the bytes before it: last, so one pass sums them */
};

struct shm_copy {   /* one version of one log slot */
    uint64_t stamp; /* sequence of the batch that wrote it; 0 = empty */
    px_inst_t instance;
    px_ballot_t acc_ballot;
    struct px_value acc_value;
    struct px_value dec_value;
    uint32_t flags; /* SHM_ACCEPTED | SHM_DECIDED */
    /* shm_copy_sum of the bytes before it and the copy's place, and of its refs when a value
     * carries a command: last, one pass */
    uint32_t check;
};

/* The command records a copy's values name (meaningful for a value with PX_VALUE_PAYLOAD): one
 * per copy, in an array of their own after the slots, so that a pool of inline values touches
 * one cache line per copy, as before commands. */
struct shm_refs {
    struct shm_ref acc, dec;
};

struct shm_rec {    /* a record of the command area; its bytes follow */
    uint64_t stamp; /* the batch that wrote it */
    px_inst_t instance;
    uint32_t kind;  /* SHM_REC_CMD, SHM_REC_PAD, SHM_REC_SNAP */
    uint32_t len;   /* bytes that follow (a PAD: to the ring's end, less this header) */
    uint32_t crc;   /* of the bytes (SHM_SEED_CMD) */
    uint32_t check; /* shm_sum of the fields before it, seeded with the position */
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
    uint64_t committed;   /* published last by store_commit, with a release store */
    uint32_t hdr_check;   /* shm_sum of the fields but magic and `committed` */
    uint64_t arena_bytes; /* the command area (a multiple of SHM_REC_ALIGN, 0: none) */
    struct shm_ctl ctl[2] __attribute__((aligned(SHM_ALIGN)));
};

static_assert(sizeof(struct shm_copy) == 64, "one slot copy is one cache line");
static_assert(2 * sizeof(struct shm_refs) == SHM_ALIGN, "a slot's refs are one cache line");
static_assert(sizeof(struct shm_rec) == 32, "a record header is half a line");
static_assert(sizeof(struct shm_slot) % SHM_ALIGN == 0, "slots stay cache-line aligned");
static_assert(sizeof(struct shm_hdr) % SHM_ALIGN == 0, "slots start cache-line aligned");
static_assert(sizeof(struct shm_ctl) == 64 + sizeof(struct px_history),
              "no padding in a summed ctl");
static_assert(offsetof(struct shm_ctl, check) + 4 == sizeof(struct shm_ctl), "check last");
static_assert(offsetof(struct shm_copy, check) + 4 == sizeof(struct shm_copy), "check last");

struct store_shm {
    struct store base; /* first: struct store * <-> struct store_shm * */
    struct shm_hdr *hdr;
    struct shm_slot *slots;
    struct shm_refs *refs; /* [2 * entries]: copy k of slot i has refs[2 * i + k] */
    uint8_t *arena;        /* the command area, arena_bytes (NULL when 0) */
    uint64_t arena_bytes;  /* read once at open, like entries */
    uint64_t snap_max;     /* params.shm_snap_max */
    uint32_t entries;      /* entries_max, read once at open: damage cannot redirect writes */
    uint64_t seq;          /* committed sequence C */
    struct shm_ctl batch;  /* the open batch's state, written to the free ctl at commit */
    /* The copies the open batch wrote (shm_where), at most one per slot: sealed at commit
     * (shm_seal_batch), once each, however many records the batch put into them. */
    uint64_t *dirty;
    uint32_t dirty_len;
    struct shm_ctl last; /* the committed ctl as this process checked or wrote it */
};

/* A record's bytes in the command area: header and bytes, rounded up to SHM_REC_ALIGN. */
static uint64_t shm_rec_size(uint32_t len)
{
    return ((uint64_t)sizeof(struct shm_rec) + len + SHM_REC_ALIGN - 1) &
           ~(uint64_t)(SHM_REC_ALIGN - 1);
}

/* CRC-32C (ipc/check.h: the crc32 instruction) of a record's bytes before its 4-byte check
 * field, which is the record's last field; the seed tells kinds and places apart. Random damage
 * passes with probability 2^-32. */
static uint32_t shm_sum(const void *record, size_t bytes, uint32_t seed)
{
    STORE_ASSERT(bytes >= sizeof(uint32_t));
    return ipc_crc32c(seed, record, bytes - sizeof(uint32_t));
}

static uint32_t shm_hdr_sum(const struct shm_hdr *h)
{
    uint64_t w[3] = {(uint64_t)h->layout_version | (uint64_t)h->entries_max << 32,
                     (uint64_t)h->node_id | (uint64_t)h->nodes << 16 | (uint64_t)h->fib_bytes << 32,
                     h->arena_bytes};
    return ipc_crc32c(SHM_SEED_HDR, w, sizeof(w));
}

static uint32_t shm_ctl_sum(const struct shm_ctl *c)
{
    return shm_sum(c, sizeof(*c), SHM_SEED_CTL);
}

static bool shm_copy_has_cmd(const struct shm_copy *c)
{
    return ((c->flags & SHM_ACCEPTED) && cmd_has_payload(&c->acc_value)) ||
           ((c->flags & SHM_DECIDED) && cmd_has_payload(&c->dec_value));
}

/* `where` = 2 * slot index + copy index: the same content elsewhere has another check. The
 * refs count only when a value carries a command (they are not read otherwise). */
static uint32_t shm_copy_sum(const struct shm_copy *c, const struct shm_refs *refs, uint64_t where)
{
    uint32_t seed = SHM_SEED_COPY ^ (uint32_t)(where * UINT64_C(0x9e3779b97f4a7c15) >> 32);
    uint32_t sum = shm_sum(c, sizeof(*c), seed);
    if (shm_copy_has_cmd(c))
        sum = ipc_crc32c(sum, refs, sizeof(*refs));
    return sum;
}

static uint64_t shm_where(const struct store_shm *m, const struct shm_copy *c)
{
    size_t index = (size_t)((const char *)c - (const char *)m->slots) / sizeof(*c);
    STORE_ASSERT(index < 2 * (size_t)m->entries);
    return index;
}

/* A copy stamped 1..upto must hold its check: upto = C for the committed copies, C + 1 for
 * those of the open batch too. Stamp 0 or above: free, never read. */
static bool shm_copy_intact(const struct store_shm *m, const struct shm_copy *c, uint64_t upto)
{
    uint64_t stamp = c->stamp;
    if (stamp == 0 || stamp > upto)
        return true;
    uint64_t where = shm_where(m, c);
    return c->check == shm_copy_sum(c, &m->refs[where], where);
}

static int shm_damaged_copy(struct store_shm *m, const struct shm_copy *c)
{
    uint64_t where = shm_where(m, c);
    return store_fail(&m->base, -EBADMSG,
                      "damaged: log slot %llu copy %llu fails its check (stamp %llu, committed "
                      "batch %llu)",
                      (unsigned long long)(where / 2), (unsigned long long)(where % 2),
                      (unsigned long long)c->stamp, (unsigned long long)m->seq);
}

static struct store_shm *shm_of(struct store *s)
{
    STORE_ASSERT(s->kind == STORE_SHM);
    return (struct store_shm *)(void *)s;
}

size_t store_shm_bytes(uint32_t entries_max)
{
    STORE_ASSERT(entries_max >= 1);
    return sizeof(struct shm_hdr) +
           (size_t)entries_max * (sizeof(struct shm_slot) + 2 * sizeof(struct shm_refs));
}

uint64_t store_shm_record_bytes(uint32_t len)
{
    return shm_rec_size(len);
}

uint64_t store_shm_arena_for(uint32_t cmd_bytes, uint64_t live)
{
    if (cmd_bytes <= CMD_INLINE_BYTES)
        return 0;
    uint64_t need = 2 * live * shm_rec_size(cmd_bytes) + shm_rec_size(cmd_bytes);
    uint64_t floor = 4ull << 20;
    return need > floor ? need : floor;
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
    /* The area may hold the remains of a format that died before its magic was written. All
     * copies start free (stamp 0), so only the header and the committed ctl need a check. */
    memset(h, 0, bytes);
    h->layout_version = STORE_LAYOUT_VERSION;
    h->entries_max = entries_max;
    h->node_id = p->node_id;
    h->nodes = p->nodes;
    h->fib_bytes = (uint32_t)sizeof(struct px_history);
    h->arena_bytes = p->shm_arena_bytes;
    h->hdr_check = shm_hdr_sum(h);
    h->ctl[0].check = shm_ctl_sum(&h->ctl[0]); /* batch 0: the empty store */
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
        return store_fail(&m->base, -EBADMSG, "not a store area, or damaged (magic %#llx)",
                          (unsigned long long)magic);
    /* Another version first: its header need not follow our check. Within our version, a
     * header that fails its check is damaged, whatever field changed. */
    if (h->layout_version == STORE_LAYOUT_VERSION && h->hdr_check != shm_hdr_sum(h))
        return store_fail(&m->base, -EBADMSG, "damaged: the area's header fails its check");
    if (h->layout_version != STORE_LAYOUT_VERSION || h->fib_bytes != sizeof(struct px_history))
        return store_fail(&m->base, -EPROTO,
                          "layout version %u (px_history %u bytes), this build reads version %d "
                          "(px_history %zu bytes)",
                          h->layout_version, h->fib_bytes, STORE_LAYOUT_VERSION,
                          sizeof(struct px_history));
    if (h->nodes != p->nodes || h->node_id != p->node_id)
        return store_fail(&m->base, -EINVAL,
                          "the store was made for node %u of %u, opened as node %u of %u",
                          h->node_id, h->nodes, p->node_id, p->nodes);
    if (h->arena_bytes != p->shm_arena_bytes)
        return store_fail(&m->base, -EINVAL,
                          "the store was made with a command area of %llu bytes, opened with %llu",
                          (unsigned long long)h->arena_bytes,
                          (unsigned long long)p->shm_arena_bytes);
    if (h->entries_max == 0 || store_shm_bytes(h->entries_max) + h->arena_bytes > p->shm_bytes)
        return store_fail(&m->base, -EBADMSG,
                          "damaged: entries_max %u does not fit the %zu-byte area", h->entries_max,
                          p->shm_bytes);
    m->entries = h->entries_max;
    m->arena_bytes = h->arena_bytes;
    m->refs = (struct shm_refs *)(void *)(m->slots + m->entries);
    m->arena = m->arena_bytes > 0 ? (uint8_t *)(void *)(m->refs + 2 * (size_t)m->entries) : NULL;
    return 0;
}

/* The committed ctl, checked: `committed` names it and its check holds. */
static int shm_ctl_verify(struct store_shm *m)
{
    const struct shm_ctl *c = &m->hdr->ctl[m->seq & 1];
    if (c->seq != m->seq)
        return store_fail(&m->base, -EBADMSG,
                          "damaged: committed batch %llu has the state of batch %llu",
                          (unsigned long long)m->seq, (unsigned long long)c->seq);
    if (c->check != shm_ctl_sum(c))
        return store_fail(&m->base, -EBADMSG,
                          "damaged: the state of committed batch %llu fails its check",
                          (unsigned long long)m->seq);
    return 0;
}

/* Checks every committed copy and that the valid ones are the committed set (slots_sum). */
static int shm_slots_verify(struct store_shm *m)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < m->entries; i++) {
        struct shm_slot *slot = &m->slots[i];
        for (int k = 0; k < 2; k++)
            if (!shm_copy_intact(m, &slot->copy[k], m->seq))
                return shm_damaged_copy(m, &slot->copy[k]);
        const struct shm_copy *v = shm_valid(slot, m->seq);
        sum ^= v != NULL ? v->check : 0u;
    }
    uint32_t want = m->hdr->ctl[m->seq & 1].slots_sum;
    if (sum != want)
        return store_fail(&m->base, -EBADMSG,
                          "damaged: the log slots are not those of committed batch %llu (sum "
                          "%08x, recorded %08x)",
                          (unsigned long long)m->seq, sum, want);
    return 0;
}

/* Header and `committed` as this process left them (every batch; two words of CRC). */
static int shm_verify_header(struct store_shm *m)
{
    const struct shm_hdr *h = m->hdr;
    if (CMM_LOAD_SHARED(h->magic) != SHM_MAGIC || h->entries_max != m->entries ||
        h->hdr_check != shm_hdr_sum(h))
        return store_fail(&m->base, -EBADMSG, "damaged: the area's header changed under the store");
    uint64_t committed = CMM_LOAD_SHARED(h->committed); /* only this process stores it */
    if (committed != m->seq)
        return store_fail(&m->base, -EBADMSG, "damaged: committed batch %llu reads as %llu",
                          (unsigned long long)m->seq, (unsigned long long)committed);
    return 0;
}

/* Reads `committed`, checks everything, then clears the copies of a batch that died before its
 * commit (after the check, so that damage is reported, not cleared away). */
static int shm_recover(struct store_shm *m)
{
    struct shm_hdr *h = m->hdr;
    m->seq = CMM_LOAD_SHARED(h->committed);
    cmm_smp_rmb(); /* pairs with the release in shm_commit: ctl and slots after the seq */
    int rc = shm_ctl_verify(m);
    if (rc == 0)
        rc = shm_slots_verify(m);
    if (rc != 0)
        return rc;
    m->last = h->ctl[m->seq & 1];
    for (uint32_t i = 0; i < m->entries; i++)
        for (int k = 0; k < 2; k++)
            if (m->slots[i].copy[k].stamp > m->seq)
                CMM_STORE_SHARED(m->slots[i].copy[k].stamp, 0); /* free: never read again */
    m->base.entries_max = m->entries;
    return 0;
}

/* ---- the command area ---- */

static struct shm_rec *shm_rec_at(const struct store_shm *m, uint64_t pos)
{
    STORE_ASSERT(m->arena_bytes > 0 && pos % SHM_REC_ALIGN == 0);
    return (struct shm_rec *)(void *)(m->arena + pos % m->arena_bytes);
}

static uint32_t shm_rec_sum(const struct shm_rec *r, uint64_t pos)
{
    uint32_t seed = SHM_SEED_REC ^ (uint32_t)(pos * UINT64_C(0x9e3779b97f4a7c15) >> 32);
    return shm_sum(r, sizeof(*r), seed);
}

static uint32_t shm_cmd_crc(const void *cmd, uint32_t len)
{
    return len > 0 ? ipc_crc32c(SHM_SEED_CMD, cmd, len) : SHM_SEED_CMD;
}

/* The header at pos, checked (its check and a size that stays within the ring's end), or NULL. */
static const struct shm_rec *shm_rec_get(const struct store_shm *m, uint64_t pos)
{
    if (m->arena_bytes == 0 || pos % SHM_REC_ALIGN != 0)
        return NULL;
    const struct shm_rec *r = shm_rec_at(m, pos);
    if (r->check != shm_rec_sum(r, pos) ||
        (r->kind != SHM_REC_CMD && r->kind != SHM_REC_PAD && r->kind != SHM_REC_SNAP))
        return NULL;
    if (pos % m->arena_bytes + shm_rec_size(r->len) > m->arena_bytes)
        return NULL;
    return r;
}

/* The bytes a committed copy names for instance inst, checked against the ref, the record and
 * their CRC; NULL when anything disagrees (damage: the caller names it). */
static const uint8_t *shm_ref_bytes(const struct store_shm *m, const struct shm_ctl *ctl,
                                    const struct shm_ref *ref, px_inst_t inst, uint32_t kind)
{
    if (ref->pos < ctl->arena_tail || ref->pos >= ctl->arena_head)
        return NULL;
    const struct shm_rec *r = shm_rec_get(m, ref->pos);
    if (r == NULL || r->kind != kind || r->instance != inst || r->len != ref->len ||
        r->crc != ref->crc || ref->pos + shm_rec_size(r->len) > ctl->arena_head)
        return NULL;
    const uint8_t *bytes = (const uint8_t *)(r + 1);
    if (shm_cmd_crc(bytes, r->len) != r->crc)
        return NULL;
    return bytes;
}

/* True when the committed state still names the record at pos: a command its instance's copy
 * names, or the snapshot its ctl names. */
static bool shm_rec_live(const struct store_shm *m, const struct shm_rec *r, uint64_t pos)
{
    if (r->kind == SHM_REC_SNAP)
        return m->last.snap.len > 0 && m->last.snap.pos == pos;
    if (r->kind != SHM_REC_CMD || r->instance <= m->last.truncated)
        return false;
    const struct shm_copy *c = shm_valid(&m->slots[r->instance % m->entries], m->seq);
    if (c == NULL || c->instance != r->instance)
        return false;
    const struct shm_refs *refs = &m->refs[shm_where(m, c)];
    return ((c->flags & SHM_ACCEPTED) && cmd_has_payload(&c->acc_value) && refs->acc.pos == pos) ||
           ((c->flags & SHM_DECIDED) && cmd_has_payload(&c->dec_value) && refs->dec.pos == pos);
}

/* Moves the batch's tail past the records the committed state no longer names, up to the first
 * live one. The space behind it is free in the committed state, so this batch may write it. */
static int shm_arena_reclaim(struct store_shm *m)
{
    uint64_t tail = m->batch.arena_tail, head = m->batch.arena_head;
    while (tail < head) {
        const struct shm_rec *r = shm_rec_get(m, tail);
        if (r == NULL)
            return store_fail(&m->base, -EBADMSG,
                              "damaged: the command area's record at %llu fails its check",
                              (unsigned long long)tail);
        if (shm_rec_live(m, r, tail))
            break;
        tail += shm_rec_size(r->len);
    }
    m->batch.arena_tail = tail > head ? head : tail;
    return 0;
}

/* Appends a record of len bytes for inst to the batch's area: 0 and *pos, or -ENOSPC. */
static int shm_arena_append2(struct store_shm *m, uint32_t kind, px_inst_t inst, const void *a,
                             uint32_t a_len, const void *b, uint32_t b_len, uint32_t crc,
                             uint64_t *pos)
{
    uint32_t len = a_len + b_len;
    uint64_t cap = m->arena_bytes, size = shm_rec_size(len);
    uint64_t head = m->batch.arena_head, tail = m->batch.arena_tail;
    uint64_t to_end = cap - head % cap;
    uint64_t pad = size > to_end ? to_end : 0; /* a record never runs over the ring's end */
    if (size > cap || head - tail + pad + size > cap) {
        m->base.area_full = kind == SHM_REC_CMD;
        return store_fail(&m->base, -ENOSPC,
                          "command area full: the %u-byte %s of instance %llu does not fit "
                          "(%llu of %llu bytes in use)",
                          len, kind == SHM_REC_CMD ? "command" : "state machine snapshot",
                          (unsigned long long)inst, (unsigned long long)(head - tail),
                          (unsigned long long)cap);
    }
    if (pad > 0) {
        struct shm_rec *p = shm_rec_at(m, head);
        *p = (struct shm_rec){.stamp = m->batch.seq,
                              .kind = SHM_REC_PAD,
                              .len = (uint32_t)(pad - sizeof(struct shm_rec))};
        p->check = shm_rec_sum(p, head);
        head += pad;
    }
    struct shm_rec *r = shm_rec_at(m, head);
    *r = (struct shm_rec){
        .stamp = m->batch.seq, .instance = inst, .kind = kind, .len = len, .crc = crc};
    r->check = shm_rec_sum(r, head);
    if (a_len > 0)
        memcpy(r + 1, a, a_len);
    if (b_len > 0)
        memcpy((uint8_t *)(r + 1) + a_len, b, b_len);
    *pos = head;
    m->batch.arena_head = head + size;
    return 0;
}

static int shm_arena_append(struct store_shm *m, px_inst_t inst, const void *cmd, uint32_t len,
                            uint32_t crc, uint64_t *pos)
{
    return shm_arena_append2(m, SHM_REC_CMD, inst, cmd, len, NULL, 0, crc, pos);
}

static void shm_close(struct store *s)
{
    struct store_shm *m = shm_of(s);
    free(m->dirty);
    free(m); /* the area belongs to the caller; an open batch is simply not published */
}

/* Hands out a copy's records, a command's bytes straight from the area (checked first). */
static int shm_emit(struct store_shm *m, const struct shm_ctl *ctl, const struct shm_copy *c,
                    store_each_fn each, void *ctx)
{
    struct px_rec r;
    for (int k = 0; k < 2; k++) {
        bool acc = k == 0;
        if (!(c->flags & (acc ? SHM_ACCEPTED : SHM_DECIDED)))
            continue;
        memset(&r, 0, sizeof(r));
        r.type = acc ? PX_REC_ACCEPTED : PX_REC_DECIDED;
        r.instance = c->instance;
        r.ballot = acc ? c->acc_ballot : 0;
        r.value = acc ? c->acc_value : c->dec_value;
        const uint8_t *bytes = NULL;
        uint32_t len = 0;
        if (cmd_has_payload(&r.value)) {
            const struct shm_refs *refs = &m->refs[shm_where(m, c)];
            const struct shm_ref *ref = acc ? &refs->acc : &refs->dec;
            bytes = shm_ref_bytes(m, ctl, ref, c->instance, SHM_REC_CMD);
            if (bytes == NULL)
                return store_fail(&m->base, -EBADMSG,
                                  "damaged: the command of instance %llu (%u bytes at %llu of "
                                  "the command area) fails its check",
                                  (unsigned long long)c->instance, ref->len,
                                  (unsigned long long)ref->pos);
            len = ref->len;
        }
        if (each != NULL)
            each(ctx, &r, bytes, len);
    }
    return 0;
}

static int shm_load(struct store *s, struct px_durable *d, store_each_fn each, void *ctx)
{
    struct store_shm *m = shm_of(s);
    int rc = shm_verify_header(m);
    if (rc == 0)
        rc = shm_ctl_verify(m);
    if (rc == 0)
        rc = shm_slots_verify(m);
    if (rc != 0)
        return rc;
    const struct shm_ctl *ctl = &m->hdr->ctl[m->seq & 1];
    uint32_t n = m->entries;
    if (ctl->arena_tail > ctl->arena_head || ctl->arena_head - ctl->arena_tail > m->arena_bytes)
        return store_fail(&m->base, -EBADMSG, "damaged: the command area's range %llu..%llu",
                          (unsigned long long)ctl->arena_tail, (unsigned long long)ctl->arena_head);
    d->promised = ctl->promised;
    d->fib = ctl->fib;
    store_emit_truncate(ctl->truncated, each, ctx);
    /* Live instances are (truncated, truncated + n]: walk them in instance order. */
    for (uint64_t k = 1; k <= n; k++) {
        px_inst_t inst = ctl->truncated + k;
        const struct shm_copy *c = shm_valid(&m->slots[inst % n], m->seq);
        if (c != NULL && c->instance == inst) {
            rc = shm_emit(m, ctl, c, each, ctx);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int shm_begin(struct store *s)
{
    struct store_shm *m = shm_of(s);
    int rc = shm_verify_header(m);
    if (rc != 0)
        return rc;
    /* From this process's copy: the committed ctl in the area is read only at open and load
     * (and checked there), so damage to it cannot slip into a batch. */
    m->batch = m->last;
    m->batch.seq = m->seq + 1;
    m->dirty_len = 0;
    return m->arena_bytes > 0 ? shm_arena_reclaim(m) : 0;
}

/* Seals the copies the batch wrote, each once, and adds their checks to the batch's slots_sum
 * (the copies they replace as the valid ones left it in shm_target). Sealing at commit rather
 * than at every record costs one CRC per copy per batch instead of two or three, and reads
 * stores that have long retired (a CRC right after the field stores stalled store forwarding). */
static void shm_seal_batch(struct store_shm *m)
{
    struct shm_copy *copies = &m->slots[0].copy[0];
    for (uint32_t i = 0; i < m->dirty_len; i++) {
        uint64_t where = m->dirty[i];
        struct shm_copy *c = &copies[where];
        c->check = shm_copy_sum(c, &m->refs[where], where);
        m->batch.slots_sum ^= c->check;
    }
    m->dirty_len = 0;
}

/* Rewrites a copy that is not the committed one. The stamp goes first, in one 8-byte store,
 * so at no moment does dst carry a stamp a reader could take for committed (it holds its old
 * stamp, below the committed copy's, or `stamp` > committed); the content and the check
 * follow; the check waits for the commit (shm_seal_batch). */
static void shm_copy_set(struct store_shm *m, struct shm_copy *dst, uint64_t stamp,
                         const struct shm_copy *content, px_inst_t inst)
{
    CMM_STORE_SHARED(dst->stamp, stamp);
    cmm_barrier(); /* the compiler keeps the content stores after the stamp store */
    dst->instance = inst;
    dst->acc_ballot = content != NULL ? content->acc_ballot : 0;
    dst->flags = content != NULL ? content->flags : 0;
    dst->check = 0;
    dst->acc_value = content != NULL ? content->acc_value : (struct px_value){0, 0, 0};
    dst->dec_value = content != NULL ? content->dec_value : (struct px_value){0, 0, 0};
    if (content != NULL && shm_copy_has_cmd(content))
        m->refs[shm_where(m, dst)] = m->refs[shm_where(m, content)];
}

/* The copy batch seq + 1 writes for instance inst, set up with the slot's current content;
 * NULL when the slot holds another live instance (the ring is full) or is damaged (*rc set). */
static struct shm_copy *shm_target(struct store_shm *m, px_inst_t inst, int *rc)
{
    uint64_t next = m->batch.seq;
    struct shm_slot *slot = &m->slots[inst % m->entries];
    struct shm_copy *cur = shm_valid(slot, m->seq);
    struct shm_copy *mine = slot->copy[0].stamp == next   ? &slot->copy[0]
                            : slot->copy[1].stamp == next ? &slot->copy[1]
                                                          : NULL;
    struct shm_copy *base = mine != NULL ? mine : cur;
    /* Checked before it is used: content carried into this batch's copy (it would be sealed
     * as if it were ours), or an instance that says the ring is full (damage, not capacity, is
     * the likelier cause then). A copy of a dead instance is overwritten unread: no check, so
     * the common case, a new instance, costs one check (the seal). This batch's own copy is
     * not sealed before the commit, so it is not checked either: damage to it in the
     * microseconds of one batch is sealed with it, as damage to memory is before any check.
     * Unread damage is found at the next open. */
    bool used = base != NULL && base != mine &&
                (base->instance == inst || base->instance > m->batch.truncated);
    if (used && !shm_copy_intact(m, base, next)) {
        *rc = shm_damaged_copy(m, base);
        return NULL;
    }
    if (base != NULL && base->instance != inst && base->instance > m->batch.truncated) {
        *rc = store_fail(&m->base, -ENOSPC,
                         "log area full: instance %llu needs a slot held by a live instance "
                         "(truncated at %llu, %u slots)",
                         (unsigned long long)inst, (unsigned long long)m->batch.truncated,
                         m->entries);
        return NULL;
    }
    if (mine == NULL) {
        /* The copy that is not the committed one; its stamp is below cur's or 0. From now on
         * it, not cur, is the slot's valid copy in the batch's slots_sum. */
        mine = cur == &slot->copy[0] ? &slot->copy[1] : &slot->copy[0];
        m->batch.slots_sum ^= cur != NULL ? cur->check : 0u;
        shm_copy_set(m, mine, next, cur != NULL && cur->instance == inst ? cur : NULL, inst);
        STORE_ASSERT(m->dirty_len < m->entries); /* one copy per slot */
        m->dirty[m->dirty_len++] = shm_where(m, mine);
    } else if (mine->instance != inst) {
        shm_copy_set(m, mine, next, NULL, inst); /* held a dead instance earlier in this batch */
    }
    return mine;
}

/* Writes an ACCEPTED or DECIDED record into this batch's copy c of its slot, with the record of
 * its command (ref, NULL for an inline value); the commit seals the copy. */
static void shm_copy_record(struct store_shm *m, struct shm_copy *c, const struct px_rec *r,
                            const struct shm_ref *ref)
{
    struct shm_refs *refs = &m->refs[shm_where(m, c)];
    if (r->type == PX_REC_ACCEPTED) {
        c->acc_ballot = r->ballot;
        c->acc_value = r->value;
        if (ref != NULL)
            refs->acc = *ref;
        c->flags |= SHM_ACCEPTED;
    } else {
        c->dec_value = r->value;
        if (ref != NULL)
            refs->dec = *ref;
        c->flags |= SHM_DECIDED;
    }
}

static int shm_put_entry(struct store_shm *m, const struct px_rec *r)
{
    if (r->instance <= m->batch.truncated)
        return 0;
    int rc = 0;
    struct shm_copy *c = shm_target(m, r->instance, &rc);
    if (c == NULL)
        return rc;
    shm_copy_record(m, c, r, NULL);
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

/* A command's record: appended to the area, or, when the slot already names a record of the
 * same value and bytes (a DECIDED of what it accepted, an ACCEPT of it at a later ballot), that
 * record named again. */
static int shm_put_cmd(struct store *s, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct store_shm *m = shm_of(s);
    if (m->arena_bytes == 0)
        return store_fail(s, -EMSGSIZE,
                          "commands longer than 8 bytes need a command area (this shm store has "
                          "none)");
    if (r->instance <= m->batch.truncated)
        return 0;
    int rc = 0;
    struct shm_copy *c = shm_target(m, r->instance, &rc);
    if (c == NULL)
        return rc;
    const struct shm_refs *refs = &m->refs[shm_where(m, c)];
    /* The slot's own record of the same command (the ACCEPTED one for a DECIDED, the earlier
     * ballot's for an ACCEPT of the same value again), when it still lies in the live range:
     * the bytes compared, its CRC reused (no second pass over them). */
    const struct shm_ref *mine[2] = {
        (c->flags & SHM_ACCEPTED) && memcmp(&c->acc_value, &r->value, sizeof(r->value)) == 0
            ? &refs->acc
            : NULL,
        (c->flags & SHM_DECIDED) && memcmp(&c->dec_value, &r->value, sizeof(r->value)) == 0
            ? &refs->dec
            : NULL};
    struct shm_ref ref = {0, cmd_len, 0};
    bool same = false;
    for (int k = 0; k < 2 && !same; k++) {
        const struct shm_ref *o = mine[k];
        if (o == NULL || o->len != cmd_len || o->pos < m->batch.arena_tail ||
            o->pos >= m->batch.arena_head)
            continue;
        const struct shm_rec *h = shm_rec_get(m, o->pos);
        same = h != NULL && h->kind == SHM_REC_CMD && h->instance == r->instance &&
               h->len == cmd_len && h->crc == o->crc &&
               (cmd_len == 0 || memcmp(h + 1, cmd, cmd_len) == 0);
        if (same)
            ref = *o;
    }
    if (!same) {
        ref.crc = shm_cmd_crc(cmd, cmd_len);
        if ((rc = shm_arena_append(m, r->instance, cmd, cmd_len, ref.crc, &ref.pos)) != 0)
            return rc;
    }
    shm_copy_record(m, c, r, &ref);
    return 0;
}

/* A state machine's snapshot: one record of the area (its struct store_sm_snap, then the
 * state's bytes), named by the batch's ctl; the one it replaces goes when the tail reaches it. */
static int shm_put_sm(struct store *s, const struct store_sm_snap *h, const void *bytes, size_t len)
{
    struct store_shm *m = shm_of(s);
    if (m->arena_bytes == 0)
        return store_fail(s, -ENOTSUP,
                          "a state machine's snapshot needs a command area (this shm store has "
                          "none)");
    if (m->snap_max > 0 && len > m->snap_max)
        return store_fail(s, -EFBIG,
                          "a state machine snapshot of %zu bytes is longer than the %llu its shm "
                          "store keeps room for",
                          len, (unsigned long long)m->snap_max);
    if (len > UINT32_MAX - sizeof(*h) - SHM_REC_ALIGN)
        return store_fail(s, -ENOSPC, "a state machine snapshot of %zu bytes does not fit", len);
    uint32_t crc = ipc_crc32c(SHM_SEED_CMD, h, sizeof(*h));
    if (len > 0)
        crc = ipc_crc32c(crc, bytes, len);
    struct shm_ref ref = {0, (uint32_t)(sizeof(*h) + len), crc};
    int rc = shm_arena_append2(m, SHM_REC_SNAP, h->index, h, (uint32_t)sizeof(*h), bytes,
                               (uint32_t)len, crc, &ref.pos);
    if (rc != 0)
        return rc;
    m->batch.snap = ref;
    return 0;
}

static int shm_load_sm(struct store *s, struct store_sm_snap *h, void **bytes, size_t *len,
                       bool *found)
{
    struct store_shm *m = shm_of(s);
    int rc = shm_verify_header(m);
    if (rc == 0)
        rc = shm_ctl_verify(m);
    if (rc != 0)
        return rc;
    const struct shm_ctl *ctl = &m->hdr->ctl[m->seq & 1];
    if (ctl->snap.len == 0)
        return 0;
    /* The record's instance is the snapshot's index; shm_ref_bytes checks it all. */
    const struct shm_rec *r = ctl->snap.len >= sizeof(*h) ? shm_rec_get(m, ctl->snap.pos) : NULL;
    const uint8_t *p =
        r != NULL ? shm_ref_bytes(m, ctl, &ctl->snap, r->instance, SHM_REC_SNAP) : NULL;
    if (p == NULL)
        return store_fail(s, -EBADMSG,
                          "damaged: the state machine's snapshot (%u bytes at %llu of the command "
                          "area) fails its check",
                          ctl->snap.len, (unsigned long long)ctl->snap.pos);
    size_t n = ctl->snap.len - sizeof(*h);
    void *copy = malloc(n > 0 ? n : 1);
    if (copy == NULL)
        return store_fail(s, -ENOMEM, "out of memory for a %zu-byte snapshot", n);
    memcpy(h, p, sizeof(*h));
    memcpy(copy, p + sizeof(*h), n);
    *bytes = copy;
    *len = n;
    *found = true;
    return 0;
}

static int shm_put_fib(struct store *s, const struct px_history *f)
{
    shm_of(s)->batch.fib = *f;
    return 0;
}

static int shm_commit(struct store *s)
{
    struct store_shm *m = shm_of(s);
    uint64_t next = m->batch.seq;
    STORE_ASSERT(next == m->seq + 1);
    int rc = shm_verify_header(m); /* damage during the batch: do not publish over it */
    if (rc != 0)
        return rc;
    shm_seal_batch(m);
    m->batch.check = shm_ctl_sum(&m->batch);
    m->hdr->ctl[next & 1] = m->batch; /* the free buffer: not the committed ctl[seq & 1] */
    m->last = m->batch;
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
    .put_cmd = shm_put_cmd,
    .put_fib = shm_put_fib,
    .put_sm = shm_put_sm,
    .load_sm = shm_load_sm,
    .commit = shm_commit,
    .close = shm_close,
};

int store_shm_open(const struct store_params *p, struct store **out, char *err, size_t err_len)
{
    if (p->shm_area == NULL || (uintptr_t)p->shm_area % SHM_ALIGN != 0 ||
        p->shm_arena_bytes % SHM_REC_ALIGN != 0 ||
        p->shm_bytes < store_shm_bytes(1) + p->shm_arena_bytes)
        return store_fail_buf(err, err_len, -EINVAL,
                              "shm store of node %u: area %p of %zu bytes is not 64-byte "
                              "aligned or smaller than %zu bytes, or its command area of %llu "
                              "bytes is not a multiple of 64",
                              (unsigned)p->node_id, p->shm_area, p->shm_bytes,
                              store_shm_bytes(1) + (size_t)p->shm_arena_bytes,
                              (unsigned long long)p->shm_arena_bytes);
    struct store_shm *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return store_fail_buf(err, err_len, -ENOMEM, "shm store: out of memory");
    m->base.ops = &shm_ops;
    m->snap_max = p->shm_snap_max;
    m->base.kind = STORE_SHM;
    m->base.node_id = p->node_id;
    m->base.nodes = p->nodes;
    snprintf(m->base.name, sizeof(m->base.name), "shm store of node %u", (unsigned)p->node_id);
    m->hdr = p->shm_area;
    m->slots = (struct shm_slot *)(void *)((char *)p->shm_area + sizeof(struct shm_hdr));
    /* Fresh (zero) or a format that died before its magic: format. A store that committed a
     * batch has its magic; without it, it is damaged (shm_check says so), not fresh. */
    if (CMM_LOAD_SHARED(m->hdr->magic) == 0 && CMM_LOAD_SHARED(m->hdr->committed) == 0) {
        size_t fit = (p->shm_bytes - sizeof(struct shm_hdr) - (size_t)p->shm_arena_bytes) /
                     (sizeof(struct shm_slot) + 2 * sizeof(struct shm_refs));
        uint32_t entries = fit > UINT32_MAX ? UINT32_MAX : (uint32_t)fit;
        /* Only the header and the slots are cleared: the command area's bytes are read only
         * where a committed copy names them (and checked there). */
        shm_format(m->hdr, store_shm_bytes(entries), p, entries);
    }
    int rc = shm_check(m, p);
    if (rc == 0)
        rc = shm_recover(m);
    if (rc == 0 && (m->dirty = malloc((size_t)m->entries * sizeof(*m->dirty))) == NULL)
        rc = store_fail(&m->base, -ENOMEM, "out of memory for the list of %u slots", m->entries);
    if (rc != 0) {
        store_fail_buf(err, err_len, rc, "%s", m->base.err);
        free(m);
        return rc;
    }
    *out = &m->base;
    return 0;
}
