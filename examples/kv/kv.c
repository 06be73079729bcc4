/* kv.c: the key-value state machine of kv.h. A chained hash table; every entry holds its key
 * and value in one allocation and what it adds to the digest, so the digest costs nothing. */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    uint64_t hash; /* of the key */
    uint64_t digest;
    uint32_t klen;
    size_t vlen;
    uint8_t *val; /* after the key, in bytes[] */
    uint8_t bytes[];
};

struct kv {
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    uint64_t count;
    uint64_t digest; /* sum of the entries' digests */
    uint8_t summary[KV_SUMMARY_BYTES];
};

static const uint8_t snapshot_magic[8] = {'p', 'x', 's', 'k', 'v', 0, 0, 1};

uint64_t kv_hash(const void *bytes, size_t len)
{
    const uint8_t *b = bytes;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

uint64_t kv_entry_digest(const void *key, size_t klen, const void *val, size_t vlen)
{
    return mix(kv_hash(key, klen) ^ mix(kv_hash(val, vlen) + vlen));
}

uint64_t kv_digest(const struct kv *kv)
{
    return kv->digest + kv->count;
}

uint64_t kv_count(const struct kv *kv)
{
    return kv->count;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* --- commands ------------------------------------------------------------------------------ */
static size_t encode_head(uint8_t *out, enum kv_op op, const void *key, size_t klen)
{
    out[0] = (uint8_t)op;
    put_u32(out + 1, (uint32_t)klen);
    if (klen > 0)
        memcpy(out + KV_HEADER, key, klen);
    return KV_HEADER + klen;
}

size_t kv_put_size(size_t klen, size_t vlen)
{
    return KV_HEADER + klen + vlen;
}

size_t kv_encode_put(uint8_t *out, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t n = encode_head(out, KV_PUT, key, klen);
    if (vlen > 0)
        memcpy(out + n, val, vlen);
    return n + vlen;
}

size_t kv_key_cmd_size(size_t klen)
{
    return KV_HEADER + klen;
}

size_t kv_encode_get(uint8_t *out, const void *key, size_t klen)
{
    return encode_head(out, KV_GET, key, klen);
}

size_t kv_encode_del(uint8_t *out, const void *key, size_t klen)
{
    return encode_head(out, KV_DEL, key, klen);
}

size_t kv_cas_size(size_t klen, size_t elen, size_t vlen)
{
    return KV_HEADER + klen + 4 + elen + vlen;
}

size_t kv_encode_cas(uint8_t *out, const void *key, size_t klen, const void *expected, size_t elen,
                     const void *val, size_t vlen)
{
    size_t n = encode_head(out, KV_CAS, key, klen);
    put_u32(out + n, expected ? (uint32_t)elen : KV_CAS_ABSENT);
    n += 4;
    if (expected && elen > 0) {
        memcpy(out + n, expected, elen);
        n += elen;
    }
    if (vlen > 0)
        memcpy(out + n, val, vlen);
    return n + vlen;
}

/* --- the table ----------------------------------------------------------------------------- */
static struct entry **find(struct kv *kv, const uint8_t *key, uint32_t klen, uint64_t h)
{
    struct entry **e = &kv->buckets[h & (kv->nbuckets - 1)];
    while (*e && !((*e)->hash == h && (*e)->klen == klen && memcmp((*e)->bytes, key, klen) == 0))
        e = &(*e)->next;
    return e;
}

static int grow(struct kv *kv)
{
    size_t n = kv->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < kv->nbuckets; i++) {
        for (struct entry *e = kv->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(kv->buckets);
    kv->buckets = b;
    kv->nbuckets = n;
    return 0;
}

static void unlink_entry(struct kv *kv, struct entry **slot)
{
    struct entry *e = *slot;
    *slot = e->next;
    kv->count--;
    kv->digest -= e->digest;
    free(e);
}

/* Sets key to val (replacing any value). 0 or -ENOMEM (nothing changed). */
static int set(struct kv *kv, const uint8_t *key, uint32_t klen, const uint8_t *val, size_t vlen)
{
    uint64_t h = kv_hash(key, klen);
    struct entry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return -ENOMEM;
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    e->val = e->bytes + klen;
    memcpy(e->bytes, key, klen);
    if (vlen > 0)
        memcpy(e->val, val, vlen);
    e->digest = kv_entry_digest(key, klen, val, vlen);
    struct entry **slot = find(kv, key, klen, h);
    if (*slot)
        unlink_entry(kv, slot);
    e->next = *slot;
    *slot = e;
    kv->count++;
    kv->digest += e->digest;
    if (kv->count > kv->nbuckets)
        (void)grow(kv); /* a longer chain if not: still correct */
    return 0;
}

static void clear(struct kv *kv)
{
    for (size_t i = 0; i < kv->nbuckets; i++)
        while (kv->buckets[i])
            unlink_entry(kv, &kv->buckets[i]);
}

struct kv *kv_new(void)
{
    struct kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return NULL;
    kv->nbuckets = 64;
    kv->buckets = calloc(kv->nbuckets, sizeof *kv->buckets);
    if (!kv->buckets) {
        free(kv);
        return NULL;
    }
    return kv;
}

void kv_free(struct kv *kv)
{
    if (!kv)
        return;
    clear(kv);
    free(kv->buckets);
    free(kv);
}

/* --- the state machine --------------------------------------------------------------------- */
static int kv_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                    size_t *result_len)
{
    struct kv *kv = ctx;
    const uint8_t *c = cmd;
    (void)index;
    if (len < KV_HEADER)
        return KV_BAD_COMMAND;
    uint32_t klen = get_u32(c + 1);
    if (klen > KV_KEY_MAX || klen > len - KV_HEADER)
        return KV_BAD_COMMAND;
    const uint8_t *key = c + KV_HEADER;
    const uint8_t *rest = key + klen;
    size_t rest_len = len - KV_HEADER - klen;
    uint64_t h = kv_hash(key, klen);
    struct entry **slot = find(kv, key, klen, h);
    switch (c[0]) {
    case KV_PUT:
        return set(kv, key, klen, rest, rest_len);
    case KV_GET:
        if (rest_len != 0)
            return KV_BAD_COMMAND;
        if (!*slot)
            return KV_NOT_FOUND;
        if ((*slot)->vlen > KV_RESULT_VALUE_MAX) {
            put_u64(kv->summary, (*slot)->vlen);
            put_u64(kv->summary + 8, kv_hash((*slot)->val, (*slot)->vlen));
            *result = kv->summary;
            *result_len = sizeof kv->summary;
            return KV_SUMMARY;
        }
        *result = (*slot)->val;
        *result_len = (*slot)->vlen;
        return KV_OK;
    case KV_DEL:
        if (rest_len != 0)
            return KV_BAD_COMMAND;
        if (!*slot)
            return KV_NOT_FOUND;
        unlink_entry(kv, slot);
        return KV_OK;
    case KV_CAS: {
        if (rest_len < 4)
            return KV_BAD_COMMAND;
        uint32_t elen = get_u32(rest);
        const uint8_t *expected = rest + 4;
        size_t after = rest_len - 4;
        if (elen == KV_CAS_ABSENT) {
            if (*slot)
                return KV_CAS_MISMATCH;
            return set(kv, key, klen, expected, after);
        }
        if (elen > after)
            return KV_BAD_COMMAND;
        if (!*slot)
            return KV_NOT_FOUND;
        if ((*slot)->vlen != elen || memcmp((*slot)->val, expected, elen) != 0)
            return KV_CAS_MISMATCH;
        return set(kv, key, klen, expected + elen, after - elen);
    }
    default:
        return KV_BAD_COMMAND;
    }
}

/* Snapshot: the magic, the entry count (u64 LE), then per entry the key length (u32 LE), the
 * value length (u64 LE), the key, the value. */
static int kv_snapshot(void *ctx, struct pxs_writer *w)
{
    struct kv *kv = ctx;
    uint8_t head[16];
    memcpy(head, snapshot_magic, 8);
    put_u64(head + 8, kv->count);
    int rc = w->write(w, head, sizeof head);
    for (size_t i = 0; rc == 0 && i < kv->nbuckets; i++) {
        for (struct entry *e = kv->buckets[i]; rc == 0 && e; e = e->next) {
            uint8_t lens[12];
            put_u32(lens, e->klen);
            put_u64(lens + 4, e->vlen);
            rc = w->write(w, lens, sizeof lens);
            if (rc == 0)
                rc = w->write(w, e->bytes, e->klen + e->vlen);
        }
    }
    return rc;
}

/* Reads exactly len bytes: 0, -EPROTO when the snapshot ends early, or the reader's error. */
static int read_exact(struct pxs_reader *r, void *buf, size_t len)
{
    uint8_t *b = buf;
    while (len > 0) {
        long n = r->read(r, b, len);
        if (n < 0)
            return (int)n;
        if (n == 0 || (size_t)n > len)
            return -EPROTO;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

static int kv_restore(void *ctx, struct pxs_reader *r)
{
    struct kv *kv = ctx;
    uint8_t head[16];
    int rc = read_exact(r, head, sizeof head);
    if (rc != 0)
        return rc;
    if (memcmp(head, snapshot_magic, 8) != 0)
        return -EPROTO;
    clear(kv);
    uint64_t count = get_u64(head + 8);
    uint8_t *buf = NULL;
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        uint8_t lens[12];
        rc = read_exact(r, lens, sizeof lens);
        if (rc != 0)
            break;
        uint32_t klen = get_u32(lens);
        uint64_t vlen = get_u64(lens + 4);
        if (klen > KV_KEY_MAX || vlen > PXS_COMMAND_MAX_LIMIT) {
            rc = -EPROTO;
            break;
        }
        uint8_t *b = realloc(buf, klen + vlen + 1);
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        buf = b;
        rc = read_exact(r, buf, klen + vlen);
        if (rc == 0)
            rc = set(kv, buf, klen, buf + klen, vlen);
    }
    free(buf);
    if (rc == 0 && kv->count != count)
        rc = -EPROTO; /* a key twice */
    return rc;
}

static uint64_t kv_digest_cb(void *ctx)
{
    return kv_digest(ctx);
}

void kv_state_machine(struct kv *kv, struct pxs_state_machine *sm)
{
    memset(sm, 0, sizeof *sm);
    sm->size = sizeof *sm;
    sm->ctx = kv;
    sm->apply = kv_apply;
    sm->snapshot = kv_snapshot;
    sm->restore = kv_restore;
    sm->digest = kv_digest_cb;
}
