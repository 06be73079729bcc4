/* kv_test: the state machine of kv.c without a pool: apply's statuses and results, snapshot
 * into memory and restore from it in chunks of 1 to 7 bytes, digests. Exit 0 when all hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

static int failures;
#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "kv_test:%d: %s\n", __LINE__, #c);                                     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

struct mem {
    struct pxs_writer w;
    struct pxs_reader r;
    uint8_t *buf;
    size_t len, pos, chunk;
};

static int mem_write(struct pxs_writer *w, const void *chunk, size_t len)
{
    struct mem *m = w->opaque;
    uint8_t *b = realloc(m->buf, m->len + len + 1);
    if (!b)
        return -12;
    memcpy(b + m->len, chunk, len);
    m->buf = b;
    m->len += len;
    return 0;
}

static long mem_read(struct pxs_reader *r, void *buf, size_t cap)
{
    struct mem *m = r->opaque;
    size_t n = m->len - m->pos;
    if (n > cap)
        n = cap;
    if (n > m->chunk)
        n = m->chunk;
    memcpy(buf, m->buf + m->pos, n);
    m->pos += n;
    return (long)n;
}

static int apply(struct pxs_state_machine *sm, const uint8_t *cmd, size_t len, const void **res,
                 size_t *res_len)
{
    *res = NULL;
    *res_len = 0;
    return sm->apply(sm->ctx, 1, cmd, len, res, res_len);
}

int main(void)
{
    struct kv *kv = kv_new();
    struct pxs_state_machine sm;
    kv_state_machine(kv, &sm);
    uint8_t cmd[256];
    const void *res;
    size_t res_len;
    const uint8_t key[3] = {0, 1, 0}, key2[1] = {0}, val[4] = {9, 0, 8, 0}, val2[2] = {7, 7};

    EXPECT(apply(&sm, cmd, kv_encode_get(cmd, key, 3), &res, &res_len) == KV_NOT_FOUND);
    EXPECT(apply(&sm, cmd, kv_encode_put(cmd, key, 3, val, 4), &res, &res_len) == KV_OK);
    EXPECT(apply(&sm, cmd, kv_encode_get(cmd, key, 3), &res, &res_len) == KV_OK);
    EXPECT(res_len == 4 && memcmp(res, val, 4) == 0);
    EXPECT(apply(&sm, cmd, kv_encode_cas(cmd, key, 3, val2, 2, val2, 2), &res, &res_len) ==
           KV_CAS_MISMATCH);
    EXPECT(apply(&sm, cmd, kv_encode_cas(cmd, key, 3, NULL, 0, val2, 2), &res, &res_len) ==
           KV_CAS_MISMATCH);
    EXPECT(apply(&sm, cmd, kv_encode_cas(cmd, key, 3, val, 4, val2, 2), &res, &res_len) == KV_OK);
    EXPECT(apply(&sm, cmd, kv_encode_get(cmd, key, 3), &res, &res_len) == KV_OK);
    EXPECT(res_len == 2 && memcmp(res, val2, 2) == 0);
    EXPECT(apply(&sm, cmd, kv_encode_cas(cmd, key2, 1, val, 4, val, 4), &res, &res_len) ==
           KV_NOT_FOUND);
    EXPECT(apply(&sm, cmd, kv_encode_cas(cmd, key2, 1, NULL, 0, NULL, 0), &res, &res_len) == KV_OK);
    EXPECT(apply(&sm, cmd, kv_encode_get(cmd, key2, 1), &res, &res_len) == KV_OK && res_len == 0);
    EXPECT(kv_count(kv) == 2);
    EXPECT(apply(&sm, cmd, 3, &res, &res_len) == KV_BAD_COMMAND);
    cmd[0] = 99;
    EXPECT(apply(&sm, cmd, 8, &res, &res_len) == KV_BAD_COMMAND);
    EXPECT(apply(&sm, cmd, kv_encode_del(cmd, key2, 1), &res, &res_len) == KV_OK);
    EXPECT(apply(&sm, cmd, kv_encode_del(cmd, key2, 1), &res, &res_len) == KV_NOT_FOUND);
    /* Many keys (the table grows), one long value (a get answers its summary). */
    for (unsigned i = 0; i < 1000; i++) {
        uint8_t k[4] = {(uint8_t)i, (uint8_t)(i >> 8), 0, 0};
        EXPECT(apply(&sm, cmd, kv_encode_put(cmd, k, 4, &i, sizeof i), &res, &res_len) == KV_OK);
    }
    size_t big_len = KV_RESULT_VALUE_MAX + 1;
    uint8_t *big = calloc(1, kv_put_size(1, big_len)), *bigval = calloc(1, big_len);
    EXPECT(apply(&sm, big, kv_encode_put(big, "b", 1, bigval, big_len), &res, &res_len) == KV_OK);
    EXPECT(apply(&sm, cmd, kv_encode_get(cmd, "b", 1), &res, &res_len) == KV_SUMMARY);
    EXPECT(res_len == KV_SUMMARY_BYTES);
    uint64_t digest = sm.digest(sm.ctx);
    EXPECT(kv_count(kv) == 1002);

    /* Snapshot, restore into a store with other contents, in small chunks. */
    struct mem m = {.chunk = 1};
    m.w.write = mem_write;
    m.w.opaque = &m;
    m.r.read = mem_read;
    m.r.opaque = &m;
    EXPECT(sm.snapshot(sm.ctx, &m.w) == 0);
    for (size_t chunk = 1; chunk <= 7; chunk++) {
        struct kv *other = kv_new();
        struct pxs_state_machine osm;
        kv_state_machine(other, &osm);
        EXPECT(apply(&osm, cmd, kv_encode_put(cmd, "x", 1, "y", 1), &res, &res_len) == KV_OK);
        m.pos = 0;
        m.chunk = chunk;
        EXPECT(osm.restore(osm.ctx, &m.r) == 0);
        EXPECT(osm.digest(osm.ctx) == digest && kv_count(other) == 1002);
        EXPECT(apply(&osm, cmd, kv_encode_get(cmd, key, 3), &res, &res_len) == KV_OK);
        EXPECT(res_len == 2 && memcmp(res, val2, 2) == 0);
        EXPECT(apply(&osm, cmd, kv_encode_get(cmd, "x", 1), &res, &res_len) == KV_NOT_FOUND);
        kv_free(other);
    }
    /* A snapshot cut short is refused. */
    m.pos = 0;
    m.len -= 3;
    EXPECT(sm.restore(sm.ctx, &m.r) < 0);
    free(m.buf);
    free(big);
    free(bigval);
    kv_free(kv);
    if (failures == 0)
        printf("kv_test: ok\n");
    return failures != 0;
}
