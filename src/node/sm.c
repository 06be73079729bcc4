/* sm.c: a library pool's state machine in a learner node (sm.h). */
#include "node/sm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cmd.h"
#include "ipc/check.h"
#include "paxos/px_mix.h"

int sm_init(struct sm_node *n, const struct pxs_state_machine *sm, uint16_t id)
{
    memset(n, 0, sizeof(*n));
    n->sm = sm;
    n->id = id;
    n->res = calloc(SM_RESULTS_MAX, sizeof(*n->res));
    return n->res != NULL ? 0 : -ENOMEM;
}

static void results_clear(struct sm_node *n)
{
    for (uint32_t i = 0; n->res != NULL && i < n->res_len; i++)
        free(n->res[(n->res_head + i) % SM_RESULTS_MAX].bytes);
    n->res_head = n->res_len = 0;
    n->res_bytes = 0;
}

void sm_fini(struct sm_node *n)
{
    results_clear(n);
    free(n->res);
    free(n->buf);
    memset(n, 0, sizeof(*n));
}

static int failed(struct sm_node *n, const char *what, int rc)
{
    snprintf(n->err, sizeof(n->err), "the state machine's %s returned %d (%s)", what, rc,
             strerror(rc < 0 ? -rc : rc));
    return SM_FAILED;
}

int sm_start(struct sm_node *n)
{
    if (n->sm->start == NULL)
        return 0;
    int rc = n->sm->start(n->sm->ctx, n->id);
    return rc < 0 ? failed(n, "start", rc) : 0;
}

/* The oldest result goes. */
static void result_drop_oldest(struct sm_node *n)
{
    struct sm_result *r = &n->res[n->res_head];
    n->res_bytes -= r->len;
    free(r->bytes);
    memset(r, 0, sizeof(*r));
    n->res_head = (n->res_head + 1u) % SM_RESULTS_MAX;
    n->res_len--;
    n->stats.results_dropped++;
}

static int result_keep(struct sm_node *n, uint64_t key, int status, const void *bytes, size_t len)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, bytes, len);
    }
    while (n->res_len > 0 &&
           (n->res_len == SM_RESULTS_MAX || n->res_bytes + len > SM_RESULTS_BYTES))
        result_drop_oldest(n);
    struct sm_result *r = &n->res[(n->res_head + n->res_len) % SM_RESULTS_MAX];
    *r = (struct sm_result){.key = key, .status = status, .len = (uint32_t)len, .bytes = copy};
    n->res_len++;
    n->res_bytes += len;
    return 0;
}

int sm_apply(struct sm_node *n, const struct px_applied *a, const uint8_t *cmd, uint32_t len,
             bool keep_result)
{
    if (a->instance <= n->index)
        return 0;
    if (a->instance != n->index + 1) {
        snprintf(n->err, sizeof(n->err), "instance %llu applied after %llu: a gap",
                 (unsigned long long)a->instance, (unsigned long long)n->index);
        return -ENODATA;
    }
    n->log_bytes += SM_ENTRY_COST;
    if (px_value_client(&a->value) == 0 || a->duplicate) {
        n->index = a->instance;
        return 0;
    }
    uint8_t inl[CMD_INLINE_BYTES];
    if (!cmd_has_payload(&a->value) && n->word_commands) {
        for (uint32_t i = 0; i < CMD_INLINE_BYTES; i++)
            inl[i] = (uint8_t)(a->value.word >> (8 * i));
        len = CMD_INLINE_BYTES;
        cmd = inl;
    } else if (!cmd_has_payload(&a->value)) {
        len = cmd_lib_unpack(a->value.word, inl);
        cmd = inl;
    } else if (cmd == NULL) {
        snprintf(n->err, sizeof(n->err), "instance %llu: the command's bytes are not here",
                 (unsigned long long)a->instance);
        return -ENODATA;
    }
    const void *result = NULL;
    size_t result_len = 0;
    int status =
        n->sm->apply(n->sm->ctx, a->instance, len > 0 ? cmd : NULL, len, &result, &result_len);
    if (status < 0)
        return failed(n, "apply", status);
    if (result_len > PXS_RESULT_MAX || (result == NULL && result_len > 0)) {
        snprintf(n->err, sizeof(n->err),
                 "the state machine's apply gave a result of %zu bytes%s (at most %u)", result_len,
                 result == NULL ? " at NULL" : "", (unsigned)PXS_RESULT_MAX);
        return SM_FAILED;
    }
    n->index = a->instance;
    n->applied++;
    n->log_bytes += len;
    uint32_t crc = ipc_crc32c(0, cmd, len);
    n->cmd_digest = n->digest_v1 ? sm_digest_step_v1(n->cmd_digest, a->instance, len, crc)
                                 : sm_digest_step(n->cmd_digest, a->instance, len, crc);
    return keep_result ? result_keep(n, cmd_key(&a->value), status, result, result_len) : 0;
}

const struct sm_result *sm_result(const struct sm_node *n, uint64_t key)
{
    for (uint32_t i = n->res_len; i > 0; i--) { /* newest first: a reply follows its apply */
        const struct sm_result *r = &n->res[(n->res_head + i - 1u) % SM_RESULTS_MAX];
        if (r->key == key)
            return r;
    }
    return NULL;
}

void sm_result_bytes(const struct sm_result *r, uint8_t *out)
{
    uint32_t s = (uint32_t)r->status;
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(s >> (8 * i));
    if (r->len > 0)
        memcpy(out + 4, r->bytes, r->len);
}

static int buf_append(struct sm_node *n, const void *chunk, size_t len)
{
    if (n->buf_cap - n->buf_len < len) {
        size_t want = n->buf_cap ? n->buf_cap : 4096;
        while (want - n->buf_len < len)
            want *= 2;
        uint8_t *grown = realloc(n->buf, want);
        if (grown == NULL)
            return -ENOMEM;
        n->buf = grown;
        n->buf_cap = want;
    }
    if (len > 0)
        memcpy(n->buf + n->buf_len, chunk, len);
    n->buf_len += len;
    return 0;
}

static void put_le64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | in[i];
    return v;
}

int sm_snapshot(struct sm_node *n)
{
    return sm_snapshot_max(n, SIZE_MAX);
}

void sm_buf_trim(struct sm_node *n)
{
    if (n->buf_cap > SM_BUF_KEEP) {
        free(n->buf);
        n->buf = NULL;
        n->buf_len = n->buf_cap = 0;
    }
}

struct sm_stream_out {
    sm_sink_fn sink;
    void *ctx;
    uint64_t len;
    int rc; /* the first failed write's */
};

static int stream_write(struct pxs_writer *w, const void *chunk, size_t len)
{
    struct sm_stream_out *o = w->opaque;
    if (chunk == NULL && len > 0)
        return -EINVAL;
    if (o->rc != 0)
        return o->rc;
    int rc = len > 0 ? o->sink(o->ctx, chunk, len) : 0;
    if (rc < 0)
        return o->rc = rc;
    o->len += len;
    return 0;
}

int sm_snapshot_to(struct sm_node *n, sm_sink_fn sink, void *ctx, uint64_t *len)
{
    struct sm_stream_out o = {.sink = sink, .ctx = ctx, .len = 0, .rc = 0};
    struct pxs_writer w = {.write = stream_write, .opaque = &o};
    int rc = n->sm->snapshot(n->sm->ctx, &w);
    if (o.rc != 0) { /* the sink failed: the snapshot is not whole, whatever the callback says */
        snprintf(n->err, sizeof(n->err), "writing the snapshot failed (%s)", strerror(-o.rc));
        return o.rc;
    }
    if (rc < 0)
        return failed(n, "snapshot", rc);
    *len = o.len;
    return 0;
}

struct sm_buf_sink {
    struct sm_node *n;
    size_t max; /* bytes n->buf may hold */
};

static int buf_sink(void *ctx, const void *chunk, size_t len)
{
    struct sm_buf_sink *b = ctx;
    if (len > b->max - b->n->buf_len)
        return -EFBIG; /* not gathered past max: the caller cannot send it anyway */
    return buf_append(b->n, chunk, len);
}

int sm_snapshot_max(struct sm_node *n, size_t max)
{
    uint8_t head[SM_SNAP_HEADER_BYTES];
    put_le64(head, n->cmd_digest);
    put_le64(head + 8, n->applied);
    put_le64(head + 16, n->index);
    n->buf_len = 0;
    int rc = buf_append(n, head, sizeof(head));
    if (rc != 0)
        return rc;
    struct sm_buf_sink b = {.n = n, .max = max};
    uint64_t len = 0;
    return sm_snapshot_to(n, buf_sink, &b, &len);
}

struct sm_stream_in {
    sm_source_fn src;
    void *ctx;
    uint64_t left;
    int rc;
};

static long stream_read(struct pxs_reader *r, void *buf, size_t cap)
{
    struct sm_stream_in *in = r->opaque;
    if (in->rc != 0)
        return in->rc;
    if (cap > in->left)
        cap = (size_t)in->left;
    if (cap == 0)
        return 0;
    if (buf == NULL)
        return -EINVAL;
    long got = in->src(in->ctx, buf, cap);
    if (got < 0 || (got == 0 && in->left > 0) || (uint64_t)got > cap) {
        in->rc = got < 0 ? (int)got : -EBADMSG;
        return in->rc;
    }
    in->left -= (uint64_t)got;
    return got;
}

struct sm_buf_src {
    const uint8_t *at;
    size_t left;
};

static long buf_read(void *ctx, void *buf, size_t cap)
{
    struct sm_buf_src *s = ctx;
    size_t n = cap < s->left ? cap : s->left;
    if (n > 0)
        memcpy(buf, s->at, n);
    s->at += n;
    s->left -= n;
    return (long)n;
}

int sm_restore_state(struct sm_node *n, px_inst_t index, uint64_t cmd_digest, uint64_t applied,
                     const uint8_t *state, size_t len)
{
    struct sm_buf_src src = {.at = state, .left = len};
    return sm_restore_from(n, index, cmd_digest, applied, buf_read, &src, len);
}

int sm_restore_from(struct sm_node *n, px_inst_t index, uint64_t cmd_digest, uint64_t applied,
                    sm_source_fn src, void *ctx, uint64_t len)
{
    struct sm_stream_in in = {.src = src, .ctx = ctx, .left = len, .rc = 0};
    struct pxs_reader r = {.read = stream_read, .opaque = &in};
    int rc = n->sm->restore(n->sm->ctx, &r);
    if (in.rc != 0) { /* the source failed: whatever restore made of it is not the snapshot */
        snprintf(n->err, sizeof(n->err), "reading the snapshot to restore failed (%s)",
                 strerror(-in.rc));
        return in.rc;
    }
    if (rc < 0)
        return failed(n, "restore", rc);
    n->index = index;
    n->cmd_digest = cmd_digest;
    n->applied = applied;
    n->log_bytes = 0; /* the log above the state restored: none applied yet */
    results_clear(n); /* results of the state replaced are no one's to answer now */
    return 0;
}

int sm_restore(struct sm_node *n, px_inst_t index, const uint8_t *bytes, size_t len)
{
    if (len < SM_SNAP_HEADER_BYTES) {
        snprintf(n->err, sizeof(n->err), "a snapshot of %zu bytes has no header", len);
        return -EBADMSG;
    }
    if (get_le64(bytes + 16) != index) {
        snprintf(n->err, sizeof(n->err), "the snapshot to install at %llu was taken at %llu",
                 (unsigned long long)index, (unsigned long long)get_le64(bytes + 16));
        return -EBADMSG;
    }
    return sm_restore_state(n, index, get_le64(bytes), get_le64(bytes + 8),
                            bytes + SM_SNAP_HEADER_BYTES, len - SM_SNAP_HEADER_BYTES);
}

uint64_t sm_digest(const struct sm_node *n)
{
    return n->sm->digest != NULL ? n->sm->digest(n->sm->ctx) : 0;
}

void sm_replay_rec(struct sm_replay *r, const struct px_rec *rec, const void *cmd, uint32_t len)
{
    struct sm_node *n = r->n;
    if (r->rc != 0)
        return;
    if (rec->type == PX_REC_TRUNCATE && rec->instance > n->index) {
        snprintf(n->err, sizeof(n->err),
                 "the log is truncated at %llu, above the state machine's snapshot at %llu",
                 (unsigned long long)rec->instance, (unsigned long long)n->index);
        r->rc = -EBADMSG;
        return;
    }
    if (rec->type != PX_REC_DECIDED || rec->instance <= n->index || rec->instance > r->upto)
        return;
    if (rec->instance != n->index + 1) {
        snprintf(n->err, sizeof(n->err),
                 "the log lacks instance %llu (the state machine stands at %llu)",
                 (unsigned long long)n->index + 1, (unsigned long long)n->index);
        r->rc = -EBADMSG;
        return;
    }
    struct px_applied a = {.instance = rec->instance, .value = rec->value};
    a.duplicate = px_history_apply(&r->fib, rec->instance, &rec->value);
#ifdef PX_SIM_BUG_SM_REPLAY_SKIP
    if (rec->instance % 7 == 0) { /* planted: replay steps over a command without applying it */
        n->index = rec->instance;
        return;
    }
#endif
    r->rc = sm_apply(n, &a, cmd, len, false);
}

int sm_replay_end(struct sm_replay *r)
{
    if (r->rc == 0 && r->n->index < r->upto) {
        snprintf(r->n->err, sizeof(r->n->err), "the log ends at %llu, the core applied up to %llu",
                 (unsigned long long)r->n->index, (unsigned long long)r->upto);
        r->rc = -EBADMSG;
    }
    return r->rc;
}
