/* report.h: what a run did, printed as a human summary on stdout and as JSON. The supervisor
 * fills it once at the end of the run from its parts (supervisor.c: fill_report); this module
 * only prints it. */
#ifndef PX_REPORT_H
#define PX_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "common/hist.h"
#include "paxos/px.h"

struct report_node {
    uint32_t incarnation, restarts;
    struct px_history fib; /* the published final history (zero when none) */
    uint64_t value;        /* the main job: its state machine's value (fib_sm.h), 0 when none */
    uint64_t bad_messages; /* received damaged and dropped, all incarnations */
    const char *verdict;   /* "ok", or why not; NULL: verification did not run */
};

/* --failover-every: the fail-over events of the run (failover.c). */
#define REPORT_PLOT_BEFORE_MS 20
#define REPORT_PLOT_MS        120 /* decisions per ms from 20 ms before the event to 100 after */
struct report_failover {
    bool on;
    const char *signal; /* "kill" or "stop" */
    uint32_t every_ms;
    uint32_t events;               /* signals sent */
    uint32_t answered;             /* events followed by a decision before the run ended */
    uint32_t hang_ms;              /* the hang timeout: a shorter stop replaces no leader */
    const double *to_decision_us;  /* per event: signal to the first decision; -1 = none */
    const double *worst_commit_us; /* per event: worst commit latency until the next event */
    double to_decision_p50, to_decision_p99, to_decision_max; /* us, over answered events */
    double worst_commit_p50, worst_commit_p99, worst_commit_max;
    uint32_t plot_event; /* the event drawn: the one whose to_decision is the median */
    uint32_t plot[REPORT_PLOT_MS];
};

struct report {
    const struct cli_config *cfg;
    uint64_t rounds_done; /* new rounds of this run decided */
    uint64_t base;        /* global rounds of earlier runs on this data (in doubt included) */
    uint64_t in_doubt;    /* rounds of earlier runs that were in doubt, resolved first */
    double seconds;
    const struct hist *latency_ns;
    uint64_t msgs, ring_full, drops, lagged, resubmits;
    uint64_t bad_messages;     /* every node's and the client's */
    uint64_t requests_dropped; /* client values the nodes' cores dropped (queue full) */
    /* --command-bytes over 8: long commands every learner applied and checked, the bad ones,
     * streams dropped torn, messages dropped for a command not held. */
    uint64_t cmds_checked, cmds_bad, cmd_torn, cmd_missing;
    uint32_t restarts, chaos_kills, chaos_leader_kills, chaos_planned;
    uint32_t restarts_asked; /* restarts a node asked for (a command's bytes were gone) */
    uint64_t leader_changes;
    uint64_t expected_value;
    uint32_t learners, learners_ok;
    uint32_t hangs;         /* hangs detected during the run */
    uint32_t hung_learners; /* learners still hung at the end: left out of verification */
    bool verified;
    const char *outcome; /* "verified", "verification failed", "interrupted", ... */
    /* --pool: the first host's gateway (src/net/gateway.h); hosts 0 for one host. */
    struct report_net {
        uint32_t hosts;
        uint64_t frames_sent, frames_received, hwm_full, drops, bad_frames, bad_messages;
        uint64_t lagged, missed, status_dropped, host_down;
        uint32_t gateway_restarts; /* this host's gateway, restarted after it died */
    } net;
    struct report_node nodes[CLI_NODES_MAX];
    struct report_failover failover;
};

/* Prints the summary and flushes out. 0, or -errno of the write that failed (nothing printed
 * about it: the caller names what failed). */
int report_print(const struct report *r, FILE *out);
/* Flushes f: 0 if every write to it since its error flag was cleared succeeded, or -errno. */
int report_written(FILE *f);

/* Where --json goes, opened before the run so that a path that cannot be written is a usage
 * error at once rather than a failure after the whole run. */
struct report_json_out {
    const char *path; /* "-" = stdout */
    FILE *f;
    bool created; /* the file did not exist: removed if the report is never written */
};
/* Opens path for writing without truncating it. 0, or -errno with one line on stderr naming
 * --json and the path. */
int report_json_open(const char *path, struct report_json_out *o);
/* Replaces the file's content with the report (writes it to stdout for "-") and closes it,
 * checking every write. 0, or -errno (one line naming --json and the cause). */
int report_json(const struct report *r, struct report_json_out *o);
/* Closes a file the report was never written to (removing it if report_json_open made it). */
void report_json_close(struct report_json_out *o);

#endif
