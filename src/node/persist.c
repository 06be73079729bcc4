#include "node/persist.h"

#include <errno.h>

static bool has_cmd(const struct px_rec *rec)
{
    return (rec->type == PX_REC_ACCEPTED || rec->type == PX_REC_DECIDED) &&
           cmd_has_payload(&rec->value);
}

/* One ACCEPTED or DECIDED record whose command travels beside its value (held: checked). */
static int put_cmd(struct store *s, const struct px_rec *rec, struct payload_plane *pay)
{
    uint64_t key = cmd_key(&rec->value);
    const struct payload_entry *e = payload_get(pay, key);
    payload_note(pay, key, rec->instance);
    return store_put_cmd(s, rec, e->bytes, e->len);
}

int persist_ready(struct store *s, const struct px_ready *r, const struct px_history *fib,
                  struct payload_plane *pay)
{
    return persist_ready_sm(s, r, fib, pay, NULL, NULL, NULL);
}

int persist_ready_sm(struct store *s, const struct px_ready *r, const struct px_history *fib,
                     struct payload_plane *pay, const struct store_sm_snap *snap,
                     persist_snap_fn write, void *ctx)
{
    /* Every command first: a batch that would lose one is not begun (the store stays whole). */
    for (uint32_t i = 0; i < r->recs_len; i++)
        if (has_cmd(&r->recs[i]) &&
            (pay == NULL || payload_get(pay, cmd_key(&r->recs[i].value)) == NULL))
            return -ENODATA;
    int rc = store_begin(s);
    for (uint32_t i = 0; rc == 0 && i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE)
            rc = store_put(s, &r->recs[i]);
    for (uint32_t i = 0; rc == 0 && i < r->recs_len; i++) {
        const struct px_rec *rec = &r->recs[i];
        if (rec->type == PX_REC_TRUNCATE)
            continue;
        rc = has_cmd(rec) ? put_cmd(s, rec, pay) : store_put(s, rec);
    }
    if (rc == 0 && fib != NULL)
        rc = store_put_fib(s, fib);
    if (rc == 0 && snap != NULL) {
        rc = store_sm_begin(s);
        if (rc == 0)
            rc = write(ctx, s);
        if (rc == 0)
            rc = store_sm_end(s, snap);
    }
    if (rc == 0)
        rc = store_commit(s);
    return rc;
}
