/* payload.c: the payload plane (payload.h). */
#include "node/payload.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/check.h"
#include "paxos/px_mix.h"

static uint32_t table_cap(void)
{
    uint32_t cap = 1;
    while (cap < 2u * PAYLOAD_ENTRIES_MAX)
        cap <<= 1; /* at most half full: short probes */
    return cap;
}

int payload_init(struct payload_plane *p, uint16_t self, uint16_t nodes, uint32_t cmd_max,
                 uint64_t budget)
{
    PX_ASSERT(cmd_max >= 1 && cmd_max <= CMD_BYTES_MAX);
    PX_ASSERT(budget >= cmd_max);
    memset(p, 0, sizeof(*p));
    p->self = self;
    p->nodes = nodes;
    p->cmd_max = cmd_max;
    p->budget = budget;
    p->cap = table_cap();
    p->tab = calloc(p->cap, sizeof(*p->tab));
    p->rx = calloc(2u * ((size_t)nodes + 1u), sizeof(*p->rx));
    p->sent = calloc((size_t)nodes + 2u, sizeof(*p->sent));
    if (p->tab == NULL || p->rx == NULL || p->sent == NULL) {
        payload_fini(p);
        return -ENOMEM;
    }
    return 0;
}

void payload_fini(struct payload_plane *p)
{
    if (p->tab != NULL && p->used > 0)
        for (uint32_t i = 0; i < p->cap; i++)
            free(p->tab[i].bytes);
    if (p->rx != NULL)
        for (uint32_t i = 0; i < 2u * ((uint32_t)p->nodes + 1u); i++)
            free(p->rx[i].buf);
    free(p->tab);
    free(p->rx);
    free(p->sent);
    p->tab = NULL;
    p->rx = NULL;
    p->sent = NULL;
}

const struct px_value *payload_value_of(const struct px_msg *m)
{
    const struct px_value *v;
    switch (m->type) {
    case PX_MSG_ACCEPT:
        v = &m->u.accept.value;
        break;
    case PX_MSG_PROMISE_ENTRY:
        v = &m->u.promise_entry.value;
        break;
    case PX_MSG_CATCHUP_ENTRY:
        v = &m->u.catchup_entry.value;
        break;
    case PX_MSG_CLIENT:
        v = &m->u.client.value;
        break;
    case PX_MSG_SNAPSHOT:
        v = &m->u.snapshot.reserved_value;
        break;
    default:
        return NULL;
    }
    return cmd_has_payload(v) ? v : NULL;
}

uint64_t payload_key_of(const struct px_msg *m)
{
    const struct px_value *v = payload_value_of(m);
    if (v == NULL)
        return 0;
    return m->type == PX_MSG_SNAPSHOT ? v->word : cmd_key(v);
}

static uint32_t slot_of(const struct payload_plane *p, uint64_t key)
{
    return (uint32_t)px_mix64(key) & (p->cap - 1u);
}

static struct payload_entry *find(const struct payload_plane *p, uint64_t key)
{
    PX_ASSERT(key != 0);
    for (uint32_t i = slot_of(p, key);; i = (i + 1u) & (p->cap - 1u)) {
        struct payload_entry *e = &p->tab[i];
        if (e->key == key)
            return e;
        if (e->key == 0)
            return NULL; /* the table is never full (used <= PAYLOAD_ENTRIES_MAX < cap) */
    }
}

const struct payload_entry *payload_get(const struct payload_plane *p, uint64_t key)
{
    return key == 0 ? NULL : find(p, key);
}

/* Removes e, shifting later entries of its probe run back (no tombstones). */
static void erase(struct payload_plane *p, struct payload_entry *e)
{
    PX_ASSERT(e->key != 0 && e->pins == 0);
    free(e->bytes);
    p->stats.bytes -= e->len;
    p->used--;
    uint32_t hole = (uint32_t)(e - p->tab);
    memset(e, 0, sizeof(*e));
    for (uint32_t i = (hole + 1u) & (p->cap - 1u); p->tab[i].key != 0;
         i = (i + 1u) & (p->cap - 1u)) {
        uint32_t home = slot_of(p, p->tab[i].key);
        /* The entry at i may move to the hole when its home is not in (hole, i] cyclically. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        p->tab[hole] = p->tab[i];
        memset(&p->tab[i], 0, sizeof(p->tab[i]));
        hole = i;
    }
}

/* Frees room for `len` more bytes and one more entry: commands never recorded at an instance
 * and not pinned, oldest first. False when that is not enough. */
static bool make_room(struct payload_plane *p, uint32_t len)
{
    while (p->used + 1u > PAYLOAD_ENTRIES_MAX || p->stats.bytes + len > p->budget) {
        struct payload_entry *victim = NULL;
        for (uint32_t i = 0; i < p->cap; i++) {
            struct payload_entry *e = &p->tab[i];
            if (e->key == 0 || e->pins > 0 || (e->inst != 0 && !e->pending))
                continue; /* what the log needs stays; unrecorded or re-requested ones may go */
            if (victim == NULL || e->born < victim->born)
                victim = e;
        }
        if (victim == NULL)
            return false;
        erase(p, victim);
    }
    return true;
}

/* Whether key may take a command of len bytes whose CRC-32C is crc: 0, or payload_put's code
 * (counted). */
static int admit(struct payload_plane *p, uint64_t key, uint32_t len, uint32_t crc)
{
    PX_ASSERT(key != 0);
    if (len > p->cmd_max)
        return -EMSGSIZE;
    struct payload_entry *e = find(p, key);
    if (e != NULL) {
        if (e->len != len || e->crc != crc)
            p->stats.conflicts++;
        return -EEXIST;
    }
    if (!make_room(p, len)) {
        p->stats.refused++;
        return -ENOSPC;
    }
    return 0;
}

/* Inserts key with bytes the table takes over (admit said yes). */
static void insert(struct payload_plane *p, uint64_t key, uint8_t *owned, uint32_t len,
                   uint32_t crc)
{
    uint32_t i = slot_of(p, key);
    while (p->tab[i].key != 0)
        i = (i + 1u) & (p->cap - 1u);
    p->tab[i] = (struct payload_entry){
        .key = key, .bytes = owned, .len = len, .crc = crc, .born = ++p->born};
    p->used++;
    p->stats.bytes += len;
}

int payload_put(struct payload_plane *p, uint64_t key, const void *bytes, uint32_t len)
{
    if (len > p->cmd_max)
        return -EMSGSIZE; /* before the bytes are read: there may be fewer than len */
    uint32_t crc = ipc_crc32c(0, bytes, len);
    int rc = admit(p, key, len, crc);
    if (rc != 0)
        return rc;
    uint8_t *copy = malloc(len > 0 ? len : 1u);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, bytes, len);
    insert(p, key, copy, len, crc);
    return 0;
}

void payload_note(struct payload_plane *p, uint64_t key, px_inst_t inst)
{
    struct payload_entry *e = key == 0 ? NULL : find(p, key);
    if (e != NULL && inst > e->inst) {
        e->inst = inst;
        e->pending = false;
    }
}

void payload_touch(struct payload_plane *p, uint64_t key)
{
    struct payload_entry *e = key == 0 ? NULL : find(p, key);
    if (e != NULL)
        e->pending = true;
}

/* True when the truncation point takes e: recorded at or below it, not waiting to be sent, not
 * asked for again since it was recorded (pending: a request read but not yet stepped by the core)
 * and not needed by the owner any more (p->keep: a request in the core's queue). */
static bool truncatable(const struct payload_plane *p, const struct payload_entry *e)
{
    return e->key != 0 && e->pins == 0 && !e->pending && e->inst != 0 && e->inst <= p->truncated &&
           (p->keep == NULL || !p->keep(p->keep_ctx, e->key));
}

void payload_truncate(struct payload_plane *p, px_inst_t inst)
{
    if (inst <= p->truncated)
        return;
    p->truncated = inst;
    if (p->used == 0)
        return; /* the common case of short commands: nothing to scan */
    for (uint32_t i = 0; i < p->cap;) {
        struct payload_entry *e = &p->tab[i];
        if (truncatable(p, e))
            erase(p, e); /* the slot may now hold a shifted entry: look at it again */
        else
            i++;
    }
}

void payload_drop(struct payload_plane *p, uint64_t key)
{
    struct payload_entry *e = key == 0 ? NULL : find(p, key);
    if (e != NULL && e->pins == 0)
        erase(p, e);
}

void payload_pin(struct payload_plane *p, uint64_t key)
{
    struct payload_entry *e = find(p, key);
    PX_ASSERT(e != NULL);
    e->pins++;
}

void payload_unpin(struct payload_plane *p, uint64_t key)
{
    struct payload_entry *e = find(p, key);
    PX_ASSERT(e != NULL && e->pins > 0);
    e->pins--;
    if (truncatable(p, e))
        erase(p, e);
}

static void asm_drop(struct payload_asm *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

uint32_t payload_dest_slot(const struct payload_plane *p, uint16_t to)
{
    uint32_t slot = to == PX_TO_ALL ? p->nodes + 1u : to;
    PX_ASSERT(slot <= p->nodes + 1u);
    return slot;
}

bool payload_sent_has(const struct payload_plane *p, uint16_t to, uint64_t key)
{
    const struct payload_sent *s = &p->sent[payload_dest_slot(p, to)];
    for (uint32_t i = 0; i < PAYLOAD_SENT_MAX; i++)
        if (s->keys[i] == key)
            return true;
    return false;
}

void payload_sent_add(struct payload_plane *p, uint16_t to, uint64_t key)
{
    struct payload_sent *s = &p->sent[payload_dest_slot(p, to)];
    s->keys[s->next] = key;
    s->next = (s->next + 1u) % PAYLOAD_SENT_MAX;
}

void payload_sent_forget(struct payload_plane *p, uint16_t to, uint64_t key)
{
    struct payload_sent *s = &p->sent[payload_dest_slot(p, to)];
    for (uint32_t i = 0; i < PAYLOAD_SENT_MAX; i++)
        if (s->keys[i] == key)
            s->keys[i] = 0;
}

void payload_peer_down(struct payload_plane *p, uint16_t peer)
{
    memset(&p->sent[payload_dest_slot(p, peer)], 0, sizeof(p->sent[0]));
    memset(&p->sent[payload_dest_slot(p, PX_TO_ALL)], 0, sizeof(p->sent[0]));
    asm_drop(&p->rx[2u * peer]);
    asm_drop(&p->rx[2u * peer + 1u]);
}

void payload_want(const struct payload_plane *p, uint16_t to, uint64_t key, struct px_msg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = PX_MSG_DATA;
    out->flags = PAYLOAD_FLAG_WANT;
    out->from = p->self;
    out->to = to;
    out->ballot = key;
}

bool payload_rx_data(struct payload_plane *p, const struct px_msg *m)
{
    if (m->type != PX_MSG_DATA)
        return false;
    if (m->from > p->nodes || (m->flags & PAYLOAD_FLAG_WANT))
        return true; /* a stranger (the transport checked), or a WANT: the driver's business */
    struct payload_asm *a = &p->rx[2u * m->from + (m->to == PX_TO_ALL ? 1u : 0u)];
    uint64_t key = m->ballot;
    uint32_t off = (uint32_t)(m->instance >> 32);
    uint32_t len = (uint32_t)m->instance;
    if (off == 0) {
        if (a->buf != NULL)
            p->stats.streams_torn++; /* the sender began again: the old stream is gone */
        asm_drop(a);
        if (key == 0 || len > p->cmd_max) {
            p->stats.streams_torn++;
            return true;
        }
        a->buf = malloc(payload_stream_len(len));
        if (a->buf == NULL) {
            p->stats.streams_torn++;
            return true;
        }
        a->key = key;
        a->len = len;
    } else if (a->buf == NULL || a->key != key || a->len != len || a->have != off) {
        if (a->buf != NULL)
            p->stats.streams_torn++; /* a gap: chunks were lost */
        asm_drop(a);
        return true;
    }
    uint32_t total = payload_stream_len(len);
    uint32_t n = total - off < PAYLOAD_CHUNK_BYTES ? total - off : PAYLOAD_CHUNK_BYTES;
    memcpy(a->buf + off, &m->u, n);
    a->have = off + n;
#ifdef PX_SIM_BUG_CMD_CUT
    /* Planted bug (a simulator build only, tests/sim/BUGS.md): a stream of more than one chunk
     * is taken as complete when only its last chunk is missing, unchecked; the command is kept
     * cut short to the bytes that arrived. The checker must report `command`. */
    if (a->have < total && a->have + PAYLOAD_CHUNK_BYTES >= total && off > 0) {
        p->stats.streams_in++;
        (void)payload_put(p, key, a->buf, a->have < len ? a->have : len);
        asm_drop(a);
        return true;
    }
#endif
    if (a->have < total)
        return true;
    uint32_t want = (uint32_t)a->buf[len] | (uint32_t)a->buf[len + 1] << 8 |
                    (uint32_t)a->buf[len + 2] << 16 | (uint32_t)a->buf[len + 3] << 24;
    if (ipc_crc32c(0, a->buf, len) != want) {
        p->stats.streams_bad++;
    } else {
        p->stats.streams_in++;
        /* The checked CRC and the buffer itself go into the table: no second pass, no copy
         * (held already, or refused: counted in admit, and the buffer is dropped). */
        if (admit(p, key, len, want) == 0) {
            insert(p, key, a->buf, len, want);
            a->buf = NULL;
        }
    }
    asm_drop(a);
    return true;
}

bool payload_rx_admit(struct payload_plane *p, const struct px_msg *m)
{
    uint64_t key = payload_key_of(m);
    if (key == 0 || find(p, key) != NULL)
        return true;
    p->stats.missing++;
    /* Ask the sender for it (once per key and sender in this batch; a full list waits for the
     * next retransmission). A client is not asked: it resubmits whole. */
    if (m->from < p->nodes && p->wants_len < PAYLOAD_WANTS_MAX) {
        for (uint32_t i = 0; i < p->wants_len; i++)
            if (p->wants[i].to == m->from && p->wants[i].ballot == key)
                return false;
        payload_want(p, m->from, key, &p->wants[p->wants_len++]);
    }
    return false;
}

uint32_t payload_chunks(const struct payload_entry *e, uint16_t from, uint16_t to, uint32_t *off,
                        struct px_msg *out, uint32_t max)
{
    uint32_t total = payload_stream_len(e->len);
    uint8_t crc[4] = {(uint8_t)e->crc, (uint8_t)(e->crc >> 8), (uint8_t)(e->crc >> 16),
                      (uint8_t)(e->crc >> 24)};
    uint32_t k = 0;
    while (k < max && *off < total) {
        struct px_msg *m = &out[k++];
        memset(m, 0, sizeof(*m));
        m->type = PX_MSG_DATA;
        m->from = from;
        m->to = to;
        m->ballot = e->key;
        m->instance = (uint64_t)*off << 32 | e->len;
        uint32_t n = total - *off < PAYLOAD_CHUNK_BYTES ? total - *off : PAYLOAD_CHUNK_BYTES;
        uint8_t *dst = (uint8_t *)&m->u;
        uint32_t body = *off < e->len ? (e->len - *off < n ? e->len - *off : n) : 0;
        memcpy(dst, e->bytes + *off, body);
        for (uint32_t j = body; j < n; j++)
            dst[j] = crc[*off + j - e->len]; /* the CRC's bytes after the command's */
        *off += n;
    }
    return k;
}

static uint64_t fib_word(uint64_t key, uint32_t at)
{
    return px_mix64(key ^ ((uint64_t)at * 0x9e3779b97f4a7c15ull));
}

/* Word k of the filler, as the 8 bytes it stands for (little endian). */
static void fib_bytes(uint64_t key, uint64_t increment, uint32_t k, uint8_t out[8])
{
    uint64_t w = k == 0 ? increment : fib_word(key, k);
    for (uint32_t b = 0; b < 8; b++)
        out[b] = (uint8_t)(w >> (8u * b));
}

/* Whole words go as one 8-byte copy (the filler is little endian on every host: htole64), the
 * tail byte by byte; a check compares whole words, not a call per word. */
void payload_fib_fill(uint64_t key, uint64_t increment, uint8_t *out, uint32_t len)
{
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = htole64(i == 0 ? increment : fib_word(key, i / 8u));
        memcpy(out + i, &w, sizeof(w));
    }
    if (i < len) {
        uint8_t w[8];
        fib_bytes(key, increment, i / 8u, w);
        memcpy(out + i, w, len - i);
    }
}

bool payload_fib_check(uint64_t key, uint64_t increment, const uint8_t *bytes, uint32_t len)
{
    uint32_t i = 0;
    uint64_t diff = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t got;
        memcpy(&got, bytes + i, sizeof(got));
        diff |= got ^ htole64(i == 0 ? increment : fib_word(key, i / 8u));
    }
    if (i < len) {
        uint8_t w[8];
        fib_bytes(key, increment, i / 8u, w);
        diff |= (uint64_t)(memcmp(bytes + i, w, len - i) != 0);
    }
    return diff == 0;
}
