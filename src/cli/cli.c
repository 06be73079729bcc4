/* cli.c: getopt_long parsing with strict range checks; one error line per bad value. */
#include "cli/cli.h"

#include "common/cmd.h"
#include "common/log.h"
#include "paxos/px.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "px_version.h"

void cli_usage(FILE *out)
{
    fprintf(out,
            "usage: paxos-shm [options]\n"
            "Runs a pool of Paxos nodes as processes over POSIX shared memory, decides --rounds\n"
            "values, applies them to a replicated Fibonacci accumulator and verifies every node.\n"
            "\n"
            "  --nodes N          processes in the pool, 1..%d (default 5)\n"
            "  --rounds R         rounds to decide, 1..%llu (default 100000)\n"
            "  --proposers P      nodes 0..P-1 propose, 1..nodes (default min(3, nodes))\n"
            "  --acceptors A      nodes 0..A-1 accept, 1..nodes (default nodes)\n"
            "  --learners L       the last L nodes learn, 1..nodes (default nodes)\n"
            "  --rotate K         hand leadership to the next proposer every K rounds, 0 = never\n"
            "                     (default 0)\n"
            "  --window W         rounds in flight, 1..%d (default 1024)\n"
            "  --command-bytes B  bytes of each round's command, %d..%u (default 8): the\n"
            "                     increment, then a pattern every learner checks\n"
            "  --ring-slots S     slots per ring, a power of two in %d..%d (default 4096)\n"
            "  --seed S           seed for back-off and chaos, 0..2^64-1 (default 1)\n"
            "  --chaos N          SIGKILL N nodes at seeded random moments, leader included,\n"
            "                     0..%d (default 0)\n"
            "  --chaos-any        chaos may kill below a majority of acceptors\n"
            "  --failover-every MS  SIGKILL the leader every MS ms, 0..%d (default 0 = never),\n"
            "                     and time the fail-over (the report's failover section)\n"
            "  --failover-signal SIG  kill|stop: stop = SIGSTOP for MS / 2, then SIGCONT\n"
            "  --store KIND       sqlite|shm (default sqlite)\n"
            "  --sync MODE        sqlite durability: normal (process crash) | full (power loss)\n"
            "  --data-dir DIR     keep node databases in DIR and continue its log\n"
            "  --keep-data        keep the fresh data directory after the run\n"
            "  --transport KIND   shm|socket (default shm; socket is the benchmark baseline)\n"
            "  --timeout SEC      give up after SEC seconds, 0..%d (default 0 = never)\n"
            "  --json FILE        write the summary as JSON to FILE (- for stdout)\n"
            "  --quiet            no summary on stdout (errors still go to stderr)\n"
            "  --pool FILE        a pool across hosts: FILE lists the hosts, their nodes and\n"
            "                     keys (nodes and roles come from it); needs --host\n"
            "  --host NAME        the host of FILE this supervisor runs; the first host of\n"
            "                     FILE runs the client and prints the report\n"
            "  --help, --version\n"
            "\n"
            "Environment: PAXOS_LOG=" LOG_LEVELS " (any case; default error) sets how\n"
            "much the processes log on stderr.\n"
            "Exit codes: 0 verified, 1 verification failed, 2 usage, 3 runtime failure\n"
            "(also: the report could not be written), 128+N stopped by signal N like\n"
            "SIGTERM (129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 138 SIGUSR1, 140 SIGUSR2,\n"
            "143 SIGTERM, ...); SIGPIPE is ignored.\n",
            CLI_NODES_MAX, (unsigned long long)CLI_ROUNDS_MAX, CLI_WINDOW_MAX,
            CLI_COMMAND_BYTES_MIN, CMD_BYTES_MAX, CLI_RING_SLOTS_MIN, CLI_RING_SLOTS_MAX,
            CLI_CHAOS_MAX, CLI_FAILOVER_MAX, CLI_TIMEOUT_MAX);
}

/* Parses an unsigned decimal in [lo, hi]; rejects signs, spaces, trailing garbage, overflow. */
static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9') {
        goto bad;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        goto bad;
    }
    *out = v;
    return 0;
bad:
    fprintf(stderr, "paxos-shm: --%s: '%s' is not an integer in %" PRIu64 "..%" PRIu64 "\n", flag,
            s ? s : "", lo, hi);
    return -1;
}

static int parse_u32(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint32_t *out)
{
    uint64_t v = 0;
    if (parse_u64(flag, s, lo, hi, &v) != 0) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_choice(const char *flag, const char *s, const char *a, const char *b, int *out)
{
    if (strcmp(s, a) == 0) {
        *out = 0;
        return 0;
    }
    if (strcmp(s, b) == 0) {
        *out = 1;
        return 0;
    }
    fprintf(stderr, "paxos-shm: --%s: '%s' is not one of %s|%s\n", flag, s, a, b);
    return -1;
}

enum {
    OPT_NODES = 256,
    OPT_ROUNDS,
    OPT_PROPOSERS,
    OPT_ACCEPTORS,
    OPT_LEARNERS,
    OPT_ROTATE,
    OPT_WINDOW,
    OPT_COMMAND_BYTES,
    OPT_RING_SLOTS,
    OPT_SEED,
    OPT_CHAOS,
    OPT_CHAOS_ANY,
    OPT_STORE,
    OPT_SYNC,
    OPT_DATA_DIR,
    OPT_KEEP_DATA,
    OPT_TRANSPORT,
    OPT_TIMEOUT,
    OPT_FAILOVER_EVERY,
    OPT_FAILOVER_SIGNAL,
    OPT_JSON,
    OPT_QUIET,
    OPT_POOL,
    OPT_HOST,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option options[] = {
    {"nodes", required_argument, NULL, OPT_NODES},
    {"rounds", required_argument, NULL, OPT_ROUNDS},
    {"proposers", required_argument, NULL, OPT_PROPOSERS},
    {"acceptors", required_argument, NULL, OPT_ACCEPTORS},
    {"learners", required_argument, NULL, OPT_LEARNERS},
    {"rotate", required_argument, NULL, OPT_ROTATE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"command-bytes", required_argument, NULL, OPT_COMMAND_BYTES},
    {"ring-slots", required_argument, NULL, OPT_RING_SLOTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"chaos", required_argument, NULL, OPT_CHAOS},
    {"chaos-any", no_argument, NULL, OPT_CHAOS_ANY},
    {"store", required_argument, NULL, OPT_STORE},
    {"sync", required_argument, NULL, OPT_SYNC},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"keep-data", no_argument, NULL, OPT_KEEP_DATA},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"failover-every", required_argument, NULL, OPT_FAILOVER_EVERY},
    {"failover-signal", required_argument, NULL, OPT_FAILOVER_SIGNAL},
    {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"pool", required_argument, NULL, OPT_POOL},
    {"host", required_argument, NULL, OPT_HOST},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Flags whose range depends on --nodes are checked after every flag is read. */
struct pending {
    const char *proposers, *acceptors, *learners;
};

static int parse_one(int opt, const char *arg, struct cli_config *c, struct pending *p)
{
    int choice = 0;
    switch (opt) {
    case OPT_NODES:
        return parse_u32("nodes", arg, 1, CLI_NODES_MAX, &c->nodes);
    case OPT_ROUNDS:
        return parse_u64("rounds", arg, 1, CLI_ROUNDS_MAX, &c->rounds);
    case OPT_PROPOSERS:
        p->proposers = arg;
        return 0;
    case OPT_ACCEPTORS:
        p->acceptors = arg;
        return 0;
    case OPT_LEARNERS:
        p->learners = arg;
        return 0;
    case OPT_ROTATE:
        return parse_u32("rotate", arg, 0, UINT32_MAX, &c->rotate);
    case OPT_WINDOW:
        return parse_u32("window", arg, 1, CLI_WINDOW_MAX, &c->window);
    case OPT_COMMAND_BYTES:
        return parse_u32("command-bytes", arg, CLI_COMMAND_BYTES_MIN, CMD_BYTES_MAX,
                         &c->command_bytes);
    case OPT_RING_SLOTS:
        if (parse_u32("ring-slots", arg, CLI_RING_SLOTS_MIN, CLI_RING_SLOTS_MAX, &c->ring_slots))
            return -1;
        if ((c->ring_slots & (c->ring_slots - 1)) != 0) {
            fprintf(stderr, "paxos-shm: --ring-slots: '%s' is not a power of two in %d..%d\n", arg,
                    CLI_RING_SLOTS_MIN, CLI_RING_SLOTS_MAX);
            return -1;
        }
        return 0;
    case OPT_SEED:
        return parse_u64("seed", arg, 0, UINT64_MAX, &c->seed);
    case OPT_CHAOS:
        return parse_u32("chaos", arg, 0, CLI_CHAOS_MAX, &c->chaos_kills);
    case OPT_CHAOS_ANY:
        c->chaos_any = true;
        return 0;
    case OPT_STORE:
        if (parse_choice("store", arg, "sqlite", "shm", &choice))
            return -1;
        c->store = choice == 0 ? CLI_STORE_SQLITE : CLI_STORE_SHM;
        return 0;
    case OPT_SYNC:
        if (parse_choice("sync", arg, "normal", "full", &choice))
            return -1;
        c->sync = choice == 0 ? CLI_SYNC_NORMAL : CLI_SYNC_FULL;
        return 0;
    case OPT_TRANSPORT:
        if (parse_choice("transport", arg, "shm", "socket", &choice))
            return -1;
        c->transport = choice == 0 ? CLI_TRANSPORT_SHM : CLI_TRANSPORT_SOCKET;
        return 0;
    case OPT_DATA_DIR:
        if (arg[0] == '\0') {
            fprintf(stderr, "paxos-shm: --data-dir: the directory name is empty\n");
            return -1;
        }
        c->data_dir = arg;
        return 0;
    case OPT_KEEP_DATA:
        c->keep_data = true;
        return 0;
    case OPT_TIMEOUT:
        return parse_u32("timeout", arg, 0, CLI_TIMEOUT_MAX, &c->timeout_s);
    case OPT_FAILOVER_EVERY:
        return parse_u32("failover-every", arg, 0, CLI_FAILOVER_MAX, &c->failover_ms);
    case OPT_FAILOVER_SIGNAL:
        if (parse_choice("failover-signal", arg, "kill", "stop", &choice))
            return -1;
        c->failover_stop = choice == 1;
        return 0;
    case OPT_JSON:
        if (arg[0] == '\0') {
            fprintf(stderr, "paxos-shm: --json: the file name is empty (use - for stdout)\n");
            return -1;
        }
        c->json_path = arg;
        return 0;
    case OPT_QUIET:
        c->quiet = true;
        return 0;
    case OPT_POOL:
    case OPT_HOST:
        if (arg[0] == '\0') {
            fprintf(stderr, "paxos-shm: --%s: the value is empty\n",
                    opt == OPT_POOL ? "pool" : "host");
            return -1;
        }
        *(opt == OPT_POOL ? &c->pool_path : &c->host_name) = arg;
        return 0;
    default:
        return -1;
    }
}

static int check_roles(struct cli_config *c, const struct pending *p)
{
    c->proposers = c->nodes < 3 ? c->nodes : 3;
    c->acceptors = c->nodes;
    c->learners = c->nodes;
    if (p->proposers && parse_u32("proposers", p->proposers, 1, c->nodes, &c->proposers))
        return -1;
    if (p->acceptors && parse_u32("acceptors", p->acceptors, 1, c->nodes, &c->acceptors))
        return -1;
    if (p->learners && parse_u32("learners", p->learners, 1, c->nodes, &c->learners))
        return -1;
    return 0;
}

int cli_parse(int argc, char **argv, struct cli_config *c)
{
    *c = (struct cli_config){
        .nodes = 5,
        .rounds = 100000,
        .window = 1024,
        .command_bytes = CLI_COMMAND_BYTES_MIN,
        .ring_slots = 4096,
        .seed = 1,
        .store = CLI_STORE_SQLITE,
        .sync = CLI_SYNC_NORMAL,
        .transport = CLI_TRANSPORT_SHM,
    };
    struct pending p = {0};
    opterr = 0; /* we print our own one-line errors */
    optind = 1;
    for (;;) {
        int opt = getopt_long(argc, argv, ":", options, NULL);
        if (opt == -1)
            break;
        if (opt == OPT_HELP) {
            cli_usage(stdout);
            return 1;
        }
        if (opt == OPT_VERSION) {
            printf("paxos-shm %s\n", PX_VERSION);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            const char *what = argv[optind - 1];
            fprintf(stderr, "paxos-shm: %s: %s (see --help)\n", what,
                    opt == ':' ? "missing value" : "unknown option");
            return -1;
        }
        if (parse_one(opt, optarg, c, &p) != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "paxos-shm: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (check_roles(c, &p) != 0)
        return -1;
    if ((c->pool_path == NULL) != (c->host_name == NULL)) {
        fprintf(stderr, "paxos-shm: --pool and --host go together\n");
        return -1;
    }
    if (c->pool_path && (c->chaos_kills > 0 || c->transport != CLI_TRANSPORT_SHM)) {
        fprintf(stderr, "paxos-shm: --pool: runs on the rings within a host; --chaos and "
                        "--transport socket are for one-host pools\n");
        return -1;
    }
    /* The shm store lives in the segment, which dies with the supervisor: a data dir would
     * keep nothing, and a user who asked for one expects the next run to continue. */
    if (c->data_dir && c->store != CLI_STORE_SQLITE) {
        fprintf(stderr, "paxos-shm: --data-dir: the shm store keeps nothing after the run; "
                        "use --store sqlite to keep and continue a log\n");
        return -1;
    }
    if (c->keep_data && c->store != CLI_STORE_SQLITE) {
        fprintf(stderr, "paxos-shm: --keep-data: only meaningful with --store sqlite\n");
        return -1;
    }
    return 0;
}

uint32_t cli_roles(const struct cli_config *c, uint32_t id)
{
    uint32_t r = 0;
    if (id < c->proposers)
        r |= PX_ROLE_PROPOSER;
    if (id < c->acceptors)
        r |= PX_ROLE_ACCEPTOR;
    if (id >= c->nodes - c->learners)
        r |= PX_ROLE_LEARNER;
    return r;
}
