/* star.h: the fastest message pattern we know how to write on the project's rings, used to
 * check that the bare ceiling (bare.h) is honest. A leader and N-1 followers, as processes,
 * exchange 64-byte messages over the point-to-point SPSC rings only: the leader pushes every
 * round's message into each follower's ring, a follower drains its ring in one batch and
 * answers with one cumulative acknowledgement, a round is done when a majority holds it.
 * Every side drains in batches, rings a peer's doorbell once per batch (which is a syscall only
 * when the peer announced sleep) and sleeps only when it has nothing to read and nothing it may
 * send. No protocol work at all. */
#ifndef PX_BENCH_STAR_H
#define PX_BENCH_STAR_H

#include <stdint.h>

#include "bare.h"

/* Same contract as bare_run: `nodes` processes (2..64), `window` rounds in flight, rings of
 * `ring_slots` slots. 0, or a negative errno with one line on stderr. */
int star_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             struct bare_result *out);

#endif
