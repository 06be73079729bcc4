#include "node/persist.h"

int persist_ready(struct store *s, const struct px_ready *r, const struct px_fib *fib)
{
    int rc = store_begin(s);
    for (uint32_t i = 0; rc == 0 && i < r->recs_len; i++)
        if (r->recs[i].type == PX_REC_TRUNCATE)
            rc = store_put(s, &r->recs[i]);
    for (uint32_t i = 0; rc == 0 && i < r->recs_len; i++)
        if (r->recs[i].type != PX_REC_TRUNCATE)
            rc = store_put(s, &r->recs[i]);
    if (rc == 0 && fib != NULL)
        rc = store_put_fib(s, fib);
    if (rc == 0)
        rc = store_commit(s);
    return rc;
}
