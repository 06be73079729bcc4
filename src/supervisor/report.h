/* report.h: what a run did, printed as a human summary on stdout and as JSON. */
#ifndef PX_REPORT_H
#define PX_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "common/hist.h"
#include "paxos/px.h"

struct report_node {
    pid_t pid; /* 0 when not running */
    uint32_t incarnation, restarts;
    bool killing; /* chaos sent SIGKILL, not reaped yet */
    bool learner;
    bool final_ok; /* published a final state */
    struct px_fib fib;
    uint64_t msgs, ring_full, drops, lagged, elections;
    uint64_t msgs_banked, ring_full_banked, drops_banked, lagged_banked;
    /* Messages this node received damaged and dropped (all incarnations, earlier ones banked). */
    uint64_t bad_messages, bad_messages_banked;
    const char *verdict; /* "ok", or why not */
};

struct report {
    const struct cli_config *cfg;
    uint64_t rounds_done, base;
    double seconds;
    const struct hist *latency_ns;
    uint64_t msgs, ring_full, drops, lagged, resubmits;
    uint64_t bad_messages; /* every node's and the client's */
    uint32_t restarts, chaos_kills, chaos_leader_kills;
    uint64_t leader_changes;
    uint64_t expected_value;
    uint32_t learners, learners_ok;
    bool verified;
    const char *outcome; /* "verified", "verification failed", "interrupted", ... */
    struct report_node nodes[CLI_NODES_MAX];
};

void report_print(const struct report *r, FILE *out);
/* Returns 0, or -errno if the file cannot be written (one line on stderr). */
int report_json(const struct report *r, const char *path);

#endif
