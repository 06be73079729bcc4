/* cli.h: command-line configuration of paxos-shm (getopt_long, every value range-checked). */
#ifndef PX_CLI_H
#define PX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (DESIGN.md; documented in --help and the README). A stop signal N
 * (common/signals.h) ends the run with EXIT_SIGNAL_BASE + N: 129 SIGHUP, 130 SIGINT, ... */
enum {
    EXIT_VERIFIED = 0,
    EXIT_VERIFY_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_RUNTIME = 3,
    EXIT_SIGNAL_BASE = 128,
    EXIT_SIGINT = EXIT_SIGNAL_BASE + 2,
    EXIT_SIGTERM = EXIT_SIGNAL_BASE + 15,
};

/* Pool bounds: node ids fit a ballot's 16 bits, but the broadcast ring serves at most 63
 * consumers, so a pool has at most 64 nodes. */
#define CLI_NODES_MAX         64
#define CLI_ROUNDS_MAX        1000000000ull /* a u32 sequence per client stays far from wrapping */
#define CLI_WINDOW_MAX        1024 /* = PX_CLIENTS_MAX * PX_DEDUP_SPAN / 2 (see client.c) */
#define CLI_RING_SLOTS_MIN    64
#define CLI_RING_SLOTS_MAX    65536
#define CLI_CHAOS_MAX         100000
#define CLI_TIMEOUT_MAX       86400
#define CLI_FAILOVER_MAX      60000 /* ms between leader kills or stops */
#define CLI_COMMAND_BYTES_MIN 8     /* the Fibonacci increment */

enum cli_store { CLI_STORE_SQLITE, CLI_STORE_SHM };
enum cli_sync { CLI_SYNC_NORMAL, CLI_SYNC_FULL };
enum cli_transport { CLI_TRANSPORT_SHM, CLI_TRANSPORT_SOCKET };

struct cli_config {
    uint32_t nodes;
    uint64_t rounds;
    uint32_t proposers; /* nodes 0..proposers-1 */
    uint32_t acceptors; /* nodes 0..acceptors-1 */
    uint32_t learners;  /* the last `learners` nodes (so roles spread over the pool) */
    uint32_t rotate;    /* hand leadership on every K decided rounds; 0 = never */
    uint32_t window;    /* rounds in flight (client window = congestion window cap) */
    /* Bytes of each round's command: 8 is the increment alone (inside the value); longer ones
     * add a pattern every learner checks, and travel beside the value (common/cmd.h). */
    uint32_t command_bytes;
    /* A library pool on the shm store: the largest state snapshot its command areas make room
     * for (0: none, the paxos-shm command's Fibonacci keeps its state in the core). */
    uint64_t sm_state_max;
    /* A library pool's snapshot policy (pxs_config.snapshot_log_*; 0: the driver's defaults). */
    uint64_t sm_snap_bytes;
    uint32_t sm_snap_entries;
    uint32_t ring_slots;
    uint64_t seed;
    uint32_t chaos_kills; /* SIGKILLs during the run; 0 = no chaos */
    bool chaos_any;       /* may kill below a majority of acceptors */
    uint32_t failover_ms; /* SIGKILL (or SIGSTOP) the leader every this many ms; 0 = never */
    bool failover_stop;   /* SIGSTOP the leader for failover_ms / 2, then SIGCONT */
    uint32_t timeout_s;   /* give up (exit 3) after this long; 0 = never */
    enum cli_store store;
    enum cli_sync sync;
    enum cli_transport transport;
    const char *data_dir; /* NULL: a fresh directory, removed at exit unless keep_data */
    bool keep_data;
    const char *json_path; /* "-" = stdout */
    bool quiet;
    const char *pool_path; /* --pool: a pool across hosts (src/net), NULL for one host */
    const char *host_name; /* --host: this supervisor's host in the pool file */
};

/* The role bits (enum px_role: proposer 1, acceptor 2, learner 4) of node `id`: nodes
 * 0..proposers-1 propose, 0..acceptors-1 accept, the last `learners` learn. The one place this
 * rule is written; the supervisor hands the result to every node. */
uint32_t cli_roles(const struct cli_config *c, uint32_t id);

/* Parses argv. Returns 0 (run), 1 (--help / --version printed: exit 0), or -1 after printing
 * one line naming the bad flag and its accepted range to stderr (exit EXIT_USAGE). */
int cli_parse(int argc, char **argv, struct cli_config *cfg);
void cli_usage(FILE *out);

#endif
