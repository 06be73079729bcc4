/* bare.h: the bare messaging ceiling of a round. A leader and N-1 followers, as processes, run
 * only the message pattern of a Multi-Paxos round over the same ipc rings as paxos-shm:
 * ACCEPT out on the leader's broadcast ring, a cumulative ACCEPTED back on each follower's
 * point-to-point ring, the COMMIT index out (piggybacked on the next ACCEPT, or alone), with a
 * pipeline of `window` rounds and the same doorbell sleeping -- and no protocol work at all
 * (no ballots, no log, no storage, no state machine). What paxos-shm reaches relative to this
 * is the cost of the protocol itself. */
#ifndef PX_BENCH_BARE_H
#define PX_BENCH_BARE_H

#include <stdint.h>

struct bare_result {
    double rounds_per_s;
    double latency_us_p50, latency_us_p99, latency_us_p999; /* ACCEPT out -> quorum back */
    double msgs_per_round;
    double cpu_s; /* user + system of all processes */
};

/* Runs `rounds` rounds with `nodes` processes (1..64) and `window` rounds in flight.
 * Returns 0, or a negative errno with one line on stderr. */
int bare_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             struct bare_result *out);

#endif
