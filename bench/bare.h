/* bare.h: the bare messaging ceiling of a round. A leader and N-1 followers, as processes, run
 * only the message pattern of a Multi-Paxos round over the same ipc rings as paxos-shm:
 * ACCEPT out on the leader's broadcast ring, a cumulative ACCEPTED back on each follower's
 * point-to-point ring, the COMMIT index out (piggybacked on the next ACCEPT, or alone), with a
 * pipeline of `window` rounds and the same doorbell sleeping -- and no protocol work at all
 * (no ballots, no log, no storage, no state machine). What paxos-shm reaches relative to this
 * is the cost of the protocol itself.
 *
 * With commands longer than 8 bytes (command_bytes > CMD_INLINE_BYTES) a round also moves the
 * slots of the command's DATA stream (node/payload.h: bare_chunks_for(command_bytes) slots of
 * PAYLOAD_CHUNK_BYTES each): a client process (endpoint `nodes`) streams them to the leader on
 * its point-to-point ring, and the leader publishes them on the broadcast ring just ahead of the
 * round's ACCEPT, so every follower reads them. The window is the one paxos-shm's client keeps
 * for that length (payload_window_for). The client streams ahead as far as its ring holds (the
 * leader takes a round's slots only within the window) and gets no replies: an upper bound of
 * moving those bytes over these rings, not a model of paxos-shm's client. */
#ifndef PX_BENCH_BARE_H
#define PX_BENCH_BARE_H

#include <stdint.h>

struct bare_result {
    double rounds_per_s;
    double latency_us_p50, latency_us_p99, latency_us_p999; /* ACCEPT out -> quorum back */
    double msgs_per_round;
    double cpu_s; /* user + system of all processes */
};

/* What a pool's leader process leaves in the segment's user area 0 for the parent. */
struct bench_pool_report {
    double latency_p50, latency_p99, latency_p999, rounds_per_s;
    uint64_t msgs;
};

struct ipc_segment;

/* One pattern run as processes: process 0 leads (and fills the report), the others follow. */
struct bench_pool {
    uint32_t nodes, window;
    uint64_t rounds;
    void (*leader)(struct ipc_segment *seg, uint32_t nodes, uint32_t window, uint64_t rounds,
                   struct bench_pool_report *out);
    void (*follower)(struct ipc_segment *seg, uint32_t self);
    /* Optional: process `nodes`, run after the others are forked (NULL: none). */
    void (*client)(struct ipc_segment *seg, uint32_t self, uint64_t rounds);
};

/* Forks the pool's processes on `seg` (its user area 0 holds a struct bench_pool_report),
 * waits for all of them and fills `out` with the report and their CPU time. 0, or -EIO when
 * a fork failed or a process did not exit 0. Shared by the bare ceiling and bench/star. */
int bench_pool_run(struct ipc_segment *seg, const struct bench_pool *p, struct bare_result *out);

/* DATA slots a command of command_bytes takes (0 for 8 bytes or fewer: it fits the value). */
uint32_t bare_chunks_for(uint32_t command_bytes);

/* Runs `rounds` rounds with `nodes` processes (1..64) and `window` rounds in flight, each round
 * carrying a command of command_bytes (8: none beside the value). Returns 0, or a negative errno
 * with one line on stderr. */
int bare_run(uint32_t nodes, uint32_t window, uint64_t rounds, uint32_t ring_slots,
             uint32_t command_bytes, struct bare_result *out);

#endif
