/* persist.h: one group commit of the core's output (the node loop's persist step). */
#ifndef PX_PERSIST_H
#define PX_PERSIST_H

#include "node/payload.h"
#include "paxos/px.h"
#include "store/store.h"

/* Writes r->recs and, when fib is not NULL, the applied state in one store transaction
 * (begin .. commit). TRUNCATE records go first: the batch commits atomically, so their place in
 * it does not matter for a crash, but a bounded store (shm) must free the slots before this
 * batch's new entries take them (entries at or below the point are dropped anyway).
 * An ACCEPTED or DECIDED record whose value has its command beside it (PX_VALUE_PAYLOAD) is
 * written with the command's bytes from `pay` (store_put_cmd), and pay learns the instance that
 * keeps them. pay may be NULL when no value has PX_VALUE_PAYLOAD. Such a record whose bytes the
 * node does not hold fails the batch with -ENODATA before anything is written (never a vote
 * without its value; the store stays usable).
 * Returns 0 when the batch is durable, or the store's negative code (store_errmsg says why). */
int persist_ready(struct store *s, const struct px_ready *r, const struct px_history *fib,
                  struct payload_plane *pay);
/* The same, and when snap is not NULL a state machine's snapshot in the same transaction,
 * streamed: write(ctx, s) writes its bytes with store_sm_write (store_sm_begin before it,
 * store_sm_end with snap after it), so the state never sits whole in memory. write's failure
 * (its code) ends the batch uncommitted. */
typedef int (*persist_snap_fn)(void *ctx, struct store *s);
int persist_ready_sm(struct store *s, const struct px_ready *r, const struct px_history *fib,
                     struct payload_plane *pay, const struct store_sm_snap *snap,
                     persist_snap_fn write, void *ctx);

#endif
