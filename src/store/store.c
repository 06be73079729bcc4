/* store.c: the backend-independent part: parameter checks, batch discipline, error lines. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

void store_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "store: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

static void store_vformat(char *err, size_t err_len, const char *fmt, va_list ap)
{
    if (err == NULL || err_len == 0)
        return;
    vsnprintf(err, err_len, fmt, ap);
}

int store_fail(struct store *s, int code, const char *fmt, ...)
{
    /* name is shorter than err (STORE_NAME_MAX < STORE_ERR_MAX): room is left for the cause */
    int n = snprintf(s->err, sizeof(s->err), "%s: ", s->name);
    STORE_ASSERT(n > 0 && (size_t)n < sizeof(s->err));
    va_list ap;
    va_start(ap, fmt);
    store_vformat(s->err + n, sizeof(s->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

int store_fail_buf(char *err, size_t err_len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_vformat(err, err_len, fmt, ap);
    va_end(ap);
    return code;
}

int store_open(const struct store_params *p, struct store **out, char *err, size_t err_len)
{
    STORE_ASSERT(p != NULL);
    STORE_ASSERT(out != NULL);
    *out = NULL;
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (p->nodes == 0 || p->nodes > PX_NODES_MAX || p->node_id >= p->nodes)
        return store_fail_buf(err, err_len, -EINVAL,
                              "store: node id %u / pool size %u out of range (1..%d nodes)",
                              (unsigned)p->node_id, (unsigned)p->nodes, PX_NODES_MAX);
    switch (p->kind) {
    case STORE_SQLITE:
        return store_sqlite_open(p, out, err, err_len);
    case STORE_SHM:
        return store_shm_open(p, out, err, err_len);
    }
    return store_fail_buf(err, err_len, -EINVAL, "store: unknown backend kind %d", (int)p->kind);
}

void store_emit_truncate(px_inst_t truncated, store_each_fn each, void *ctx)
{
    if (truncated == 0 || each == NULL)
        return;
    struct px_rec r;
    memset(&r, 0, sizeof(r));
    r.type = PX_REC_TRUNCATE;
    r.instance = truncated;
    each(ctx, &r, NULL, 0);
}

int store_load(struct store *s, struct px_durable *d, store_each_fn each, void *ctx)
{
    STORE_ASSERT(s != NULL && d != NULL);
    STORE_ASSERT(!s->in_batch);
    if (s->failed != 0)
        return s->failed;
    memset(d, 0, sizeof(*d));
    return s->ops->load(s, d, each, ctx);
}

/* A failed batch call makes the store unusable (see store.h): later calls repeat the code. */
static int store_sticky(struct store *s, int rc)
{
    if (rc != 0 && s->failed == 0)
        s->failed = rc;
    return rc;
}

int store_begin(struct store *s)
{
    STORE_ASSERT(s != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(!s->in_batch);
    int rc = store_sticky(s, s->ops->begin(s));
    if (rc == 0)
        s->in_batch = true;
    return rc;
}

int store_put(struct store *s, const struct px_rec *r)
{
    STORE_ASSERT(s != NULL && r != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch);
    STORE_ASSERT(r->type >= PX_REC_PROMISE && r->type <= PX_REC_TRUNCATE);
    if ((r->type == PX_REC_ACCEPTED || r->type == PX_REC_DECIDED) && cmd_has_payload(&r->value))
        return store_sticky(s, store_fail(s, -EINVAL,
                                          "store_put: the value of instance %llu carries a command"
                                          " longer than 8 bytes (its bytes would be lost; use"
                                          " store_put_cmd)",
                                          (unsigned long long)r->instance));
    return store_sticky(s, s->ops->put(s, r));
}

int store_put_cmd(struct store *s, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    STORE_ASSERT(s != NULL && r != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch);
    if (r->type != PX_REC_ACCEPTED && r->type != PX_REC_DECIDED)
        return store_sticky(s, store_fail(s, -EINVAL,
                                          "store_put_cmd: record type %u of instance %llu carries"
                                          " no command (only ACCEPTED and DECIDED do)",
                                          (unsigned)r->type, (unsigned long long)r->instance));
    if (!cmd_has_payload(&r->value))
        return store_sticky(s, store_fail(s, -EINVAL,
                                          "store_put_cmd: the value of instance %llu has no command"
                                          " bytes (PX_VALUE_PAYLOAD not set; use store_put)",
                                          (unsigned long long)r->instance));
    if (cmd_len > CMD_BYTES_MAX || (cmd == NULL && cmd_len > 0))
        return store_sticky(s, store_fail(s, -EINVAL,
                                          "store_put_cmd: command of instance %llu: %u bytes%s"
                                          " (at most %u)",
                                          (unsigned long long)r->instance, (unsigned)cmd_len,
                                          cmd == NULL ? " at NULL" : "", (unsigned)CMD_BYTES_MAX));
    return store_sticky(s, s->ops->put_cmd(s, r, cmd, cmd_len));
}

int store_put_fib(struct store *s, const struct px_history *f)
{
    STORE_ASSERT(s != NULL && f != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch);
    return store_sticky(s, s->ops->put_fib(s, f));
}

int store_put_sm_snapshot(struct store *s, const struct store_sm_snap *h, const void *bytes,
                          size_t len)
{
    STORE_ASSERT(s != NULL && h != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch);
    if (bytes == NULL && len > 0)
        return store_sticky(
            s, store_fail(s, -EINVAL, "store_put_sm_snapshot: %zu bytes at NULL", len));
    if (s->ops->put_sm == NULL)
        return store_sticky(
            s, store_fail(s, -ENOTSUP, "this store keeps no state machine's snapshot"));
    return store_sticky(s, s->ops->put_sm(s, h, bytes, len));
}

int store_load_sm_snapshot(struct store *s, struct store_sm_snap *h, void **bytes, size_t *len,
                           bool *found)
{
    STORE_ASSERT(s != NULL && h != NULL && bytes != NULL && len != NULL && found != NULL);
    STORE_ASSERT(!s->in_batch);
    memset(h, 0, sizeof(*h));
    *bytes = NULL;
    *len = 0;
    *found = false;
    if (s->failed != 0)
        return s->failed;
    if (s->ops->load_sm == NULL)
        return store_fail(s, -ENOTSUP, "this store keeps no state machine's snapshot");
    return s->ops->load_sm(s, h, bytes, len, found);
}

int store_commit(struct store *s)
{
    STORE_ASSERT(s != NULL);
    if (s->failed != 0) {
        s->in_batch = false;
        return s->failed;
    }
    STORE_ASSERT(s->in_batch);
    int rc = store_sticky(s, s->ops->commit(s));
    s->in_batch = false;
    return rc;
}

int store_sm_digest_version(const struct store *s)
{
    STORE_ASSERT(s != NULL);
    return s->sm_digest == 1 ? 1 : 2;
}

int store_sm_begin(struct store *s)
{
    STORE_ASSERT(s != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch && !s->sm_writing);
    if (s->ops->put_sm == NULL)
        return store_sticky(
            s, store_fail(s, -ENOTSUP, "this store keeps no state machine's snapshot"));
    s->sm_writing = true;
    s->sm_gather_len = 0;
    return s->ops->sm_begin != NULL ? store_sticky(s, s->ops->sm_begin(s)) : 0;
}

/* A backend without sm_write: the pieces gathered for one put_sm. */
static int sm_gather(struct store *s, const void *bytes, size_t len)
{
    if (s->sm_gather_cap - s->sm_gather_len < len) {
        size_t want = s->sm_gather_cap ? s->sm_gather_cap : 4096;
        while (want - s->sm_gather_len < len) {
            if (want > SIZE_MAX / 2)
                return store_fail(s, -ENOMEM, "a snapshot too long to gather in memory");
            want *= 2;
        }
        uint8_t *grown = realloc(s->sm_gather, want);
        if (grown == NULL)
            return store_fail(s, -ENOMEM, "out of memory for a snapshot of %zu bytes",
                              s->sm_gather_len + len);
        s->sm_gather = grown;
        s->sm_gather_cap = want;
    }
    memcpy(s->sm_gather + s->sm_gather_len, bytes, len);
    s->sm_gather_len += len;
    return 0;
}

int store_sm_write(struct store *s, const void *bytes, size_t len)
{
    STORE_ASSERT(s != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch && s->sm_writing);
    if (bytes == NULL && len > 0)
        return store_sticky(s, store_fail(s, -EINVAL, "store_sm_write: %zu bytes at NULL", len));
    if (len == 0)
        return 0;
    return store_sticky(s, s->ops->sm_write != NULL ? s->ops->sm_write(s, bytes, len)
                                                    : sm_gather(s, bytes, len));
}

int store_sm_end(struct store *s, const struct store_sm_snap *h)
{
    STORE_ASSERT(s != NULL && h != NULL);
    if (s->failed != 0)
        return s->failed;
    STORE_ASSERT(s->in_batch && s->sm_writing);
    s->sm_writing = false;
    int rc = s->ops->sm_end != NULL ? s->ops->sm_end(s, h)
                                    : s->ops->put_sm(s, h, s->sm_gather, s->sm_gather_len);
    free(s->sm_gather); /* a large state's copy is not kept between snapshots */
    s->sm_gather = NULL;
    s->sm_gather_len = s->sm_gather_cap = 0;
    return store_sticky(s, rc);
}

int store_sm_open(struct store *s, struct store_sm_snap *h, uint64_t *len, bool *found)
{
    STORE_ASSERT(s != NULL && h != NULL && len != NULL && found != NULL);
    STORE_ASSERT(!s->in_batch && !s->sm_reading);
    memset(h, 0, sizeof(*h));
    *len = 0;
    *found = false;
    if (s->failed != 0)
        return s->failed;
    if (s->ops->load_sm == NULL)
        return store_fail(s, -ENOTSUP, "this store keeps no state machine's snapshot");
    int rc;
    if (s->ops->sm_open != NULL) {
        rc = s->ops->sm_open(s, h, len, found);
    } else {
        void *bytes = NULL;
        size_t n = 0;
        rc = s->ops->load_sm(s, h, &bytes, &n, found);
        s->sm_out = bytes;
        s->sm_out_len = n;
        s->sm_out_at = 0;
        *len = n;
    }
    s->sm_reading = rc == 0 && *found;
    return rc;
}

long store_sm_read(struct store *s, void *buf, size_t cap)
{
    STORE_ASSERT(s != NULL && (buf != NULL || cap == 0));
    STORE_ASSERT(s->sm_reading);
    if (cap > LONG_MAX)
        cap = LONG_MAX;
    if (s->ops->sm_read != NULL)
        return s->ops->sm_read(s, buf, cap);
    size_t n = s->sm_out_len - s->sm_out_at;
    if (n > cap)
        n = cap;
    if (n > 0)
        memcpy(buf, s->sm_out + s->sm_out_at, n);
    s->sm_out_at += n;
    return (long)n;
}

void store_sm_close(struct store *s)
{
    STORE_ASSERT(s != NULL);
    if (!s->sm_reading)
        return;
    s->sm_reading = false;
    if (s->ops->sm_close != NULL)
        s->ops->sm_close(s);
    free(s->sm_out);
    s->sm_out = NULL;
    s->sm_out_len = s->sm_out_at = 0;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    store_sm_close(s);
    free(s->sm_gather);
    s->sm_gather = NULL;
    s->ops->close(s);
}

const char *store_errmsg(const struct store *s)
{
    STORE_ASSERT(s != NULL);
    return s->err;
}

bool store_shm_area_full(const struct store *s)
{
    return s->kind == STORE_SHM && s->area_full;
}

uint32_t store_shm_entries_max(const struct store *s)
{
    STORE_ASSERT(s != NULL);
    return s->entries_max;
}
