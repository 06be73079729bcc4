/* sup.h: the supervisor's parts and the context they share (supervisor process only,
 * single-threaded). One file per part:
 *   setup.c       segment, data directory, registry, signals, teardown (sup_env)
 *   identity.c    the data directory's stores held against the registry (pool id, rollback)
 *   membership.c  the process table, spawn, the failure detector and restarts (sup_members)
 *   chaos.c       seeded SIGKILLs of nodes (sup_chaos)
 *   record.c      the client's durable record of what it submitted and saw decided (sup_record)
 *   drive.c       the client drive: resolve rounds in doubt, submit, read replies, resubmit,
 *                 converge (sup_drive)
 *   verify.c      the nodes' final states against the client's own expectation (sup_verify)
 *   net.c         a pool across hosts (--pool): the gateway, remote nodes, stop and collect
 *   supervisor.c  sup_run: the order of the parts, then the report, filled once from them.
 * A part owns its struct; others read it through the part's functions or fields named in its
 * header comment. */
#ifndef PX_SUP_H
#define PX_SUP_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "node/payload.h"
#include "paxos/px.h"
#include "store/store.h"

struct client;
struct ipc_segment;
struct pool_shared;
struct pool_node_shared;
struct sock_mesh;
struct store_registry;
struct sup_net;
struct transport;

/* --- setup.c -------------------------------------------------------------------------------- */
struct sup_env {
    char seg_name[64]; /* "" when no segment was created */
    struct ipc_segment *seg;
    struct pool_shared *pool;        /* the supervisor's user area: stop, alive mask, epoch */
    struct transport *t;             /* the supervisor's (client's) endpoint */
    struct sock_mesh *mesh;          /* --transport socket only */
    char data_dir[PATH_MAX];         /* "" with --store shm */
    bool data_dir_fresh;             /* created by this run: removed at exit unless --keep-data */
    struct store_registry *registry; /* sqlite store only; NULL after a registry failure */
    int lock_fd;                     /* DIR/lock, flock()ed for the whole run; -1 when none */
    int64_t pool_id;                 /* the registry's pool id (identity.c); 0 without a registry */
    int64_t epoch;         /* this run's id in the registry, stamped into every node store */
    bool refused;          /* identity.c refused the data dir: nothing is recorded at teardown */
    bool discard_registry; /* ... and the registry it found missing is removed again */
};

/* --- membership.c --------------------------------------------------------------------------- */
/* What an incarnation counted in the segment; banked when it dies (the next starts from 0). */
struct sup_counters {
    uint64_t msgs, ring_full, drops, lagged;
    uint64_t bad_messages;     /* received damaged and dropped */
    uint64_t requests_dropped; /* client values the core dropped at a full request queue */
    uint64_t cmd_torn;         /* long commands' streams dropped torn or damaged */
    uint64_t cmd_missing;      /* messages dropped because their command was not held */
    uint64_t cmds_checked;     /* long commands applied and checked (every incarnation) */
    uint64_t cmds_bad;         /* of them wrong or missing */
};

struct sup_proc {
    pid_t pid;            /* 0 when not running */
    uint32_t incarnation; /* starts of this id, continued across runs on the same data */
    uint32_t restarts;    /* restarts of this id, continued across runs on the same data */
    bool killing;         /* chaos sent SIGKILL, not reaped yet */
    bool did_not_stop;    /* SIGKILLed because it did not stop when told to */
    bool restart_due;     /* died; sup_restart_due starts its next incarnation */
    bool hung;            /* no progress for SUP_HANG_NS: marked down until it moves again */
    bool hung_at_end;     /* still hung when the run ended: SIGKILLed, verdict "hung" */
    bool left_out;        /* hung for good when the learners converged without it */
    uint64_t heartbeat_seen, progress_ns; /* the hang watch's last look */
    /* The node's CPU time (ns, /proc/PID/schedstat) when its silence reached SUP_HANG_NS / 2,
     * and when that was; 0: not taken in this silence. */
    uint64_t cpu_mark_ns, cpu_mark_at_ns;
    uint64_t died_ns;  /* when its last death was learned (restart.h holds a leader's restart) */
    bool died_leading; /* it was the leader when it died */
    bool gone;         /* its death was announced from its life lock; not reaped yet */
    /* Restarts it asked for (NODE_EXIT_RESTART) in a row, each within SUP_ASKED_QUICK_NS of its
     * start and at one applied index, and that index: a node that keeps ending there at once (a
     * state machine whose apply fails on one command, a start that always fails) stops the run
     * at SUP_ASKED_RESTARTS_MAX instead of looping. */
    uint32_t asked_in_a_row;
    uint64_t asked_at;
    uint64_t started_ns; /* its current incarnation was forked then */
    struct sup_counters banked;
};

/* The early death notice (watch.c): watcher threads set bits here, the main thread takes them. */
struct sup_watch {
    pthread_t threads[CLI_NODES_MAX];
    bool running[CLI_NODES_MAX];
    int quit;                                 /* main thread: 1 = watchers return */
    uint32_t started;                         /* watchers running (each adds 1 as it starts) */
    uint64_t dead_mask;                       /* watchers: bit i = node i died (atomic or) */
    uint32_t dead_incarnation[CLI_NODES_MAX]; /* watchers: the incarnation that died */
};

struct sup_members {
    struct sup_proc procs[CLI_NODES_MAX];
    uint32_t restarts;       /* restarts during this run */
    uint32_t restarts_asked; /* of them, nodes that ended asking for one (NODE_EXIT_RESTART) */
    bool stopping;           /* the nodes were told to stop: exits are expected, no restarts */
    bool stop_restart;       /* ...except a node killed before it published its final state */
    bool note_failed;        /* a registry write of the nodes table failed (reported once) */
    /* The drive restarts the dead after it handed their requests on: a fork of the supervisor
     * takes milliseconds, which a fail-over should not wait for. */
    bool defer_restarts;
    uint64_t watch_ns; /* the hang watch's last run */
    struct sup_watch watch;
    uint32_t hangs; /* hangs detected during this run */
};

/* --- chaos.c -------------------------------------------------------------------------------- */
struct sup_chaos {
    uint64_t rng;
    uint64_t *kill_at; /* sorted round counts at which a node is killed; NULL: no chaos */
    uint32_t next;     /* index into kill_at */
    uint32_t kills, leader_kills;
};

/* --- failover.c ----------------------------------------------------------------------------- */
/* Events per run: more than a run of --failover-every 1 holds for a minute of drive. */
#define SUP_FAILOVER_EVENTS_MAX 65536u
/* Decisions per ms are counted for this many ms of drive (10 minutes; later ones are not). */
#define SUP_FAILOVER_MS_MAX (600u * 1000u)

struct sup_failover_event {
    uint64_t at_ns;    /* the signal was sent */
    uint64_t first_ns; /* the first decision after it by another leader; 0 = none */
    uint64_t worst_ns; /* worst commit latency of the rounds decided until the next event */
    uint16_t victim;
    pid_t victim_pid;
};

struct sup_failover {
    uint64_t start_ns, next_ns;
    struct sup_failover_event *events; /* NULL without --failover-every */
    uint32_t len;
    int32_t stopped; /* the SIGSTOPped leader waiting for its SIGCONT, -1 = none */
    pid_t stopped_pid;
    uint64_t cont_ns;
    uint32_t *per_ms;                         /* decisions in each ms since start_ns */
    double *to_decision_us, *worst_commit_us; /* sup_failover_report's, freed with the rest */
};

/* --- drive.c -------------------------------------------------------------------------------- */
struct sup_drive {
    struct client *client;
    uint16_t target;        /* the node requests go to */
    uint64_t deadline_ns;   /* --timeout: the run gives up at this time; 0 = never */
    uint64_t max_instance;  /* highest instance a reply reported, over both phases */
    double seconds;         /* the new rounds: first submission to last decision */
    uint16_t leader;        /* the leader the client last saw, PX_NODE_NONE before any */
    pid_t leader_pid;       /* its process: another pid under the same id is another leader */
    uint16_t handed_to;     /* the dead leader's successor that got the requests, or NONE */
    bool resend;            /* the old leader is gone: resend every outstanding request now */
    uint64_t chaos_tail_ns; /* the rounds are decided, chaos kills still owed: wait until then */
    uint64_t finished_ns;   /* when the client's last round was decided (0: not yet) */
    uint64_t decided_ns;    /* when the client last saw a round decided (0: not yet) */
    /* --command-bytes over 8: the command being streamed to a node ahead of its CLIENT message
     * (node/payload.h), and how far the transport took it. One at a time. */
    struct {
        bool active;
        uint8_t *buf; /* command_bytes bytes, allocated at the first use */
        struct payload_entry e;
        uint32_t off;
        struct px_msg m; /* the CLIENT message that follows the stream */
    } stream;
};

/* --- record.c ------------------------------------------------------------------------------- */
struct sup_record {
    struct store_run run; /* this run's row (id 0: not written, e.g. the shm store) */
    bool resolving;       /* the client is resolving rounds in doubt, not driving new ones */
};

/* --- verify.c ------------------------------------------------------------------------------- */
struct sup_node_end {
    bool learner;
    bool final_ok; /* published a final state */
    struct px_history fib;
    /* A library pool: the final_sm_* and final_cmd_digest words (common/pool.h). */
    uint64_t sm_applied, sm_index, sm_digest, cmd_digest;
    struct sup_counters counters; /* every incarnation of this run */
    uint64_t elections;
    const char *verdict; /* "ok", or why not; NULL when verification did not run */
};

struct sup_verify {
    struct sup_node_end nodes[CLI_NODES_MAX];
    uint64_t expected_value;
    uint32_t learners, learners_ok;
    uint32_t hung; /* learners left out: hung when the run ended */
    uint32_t lost; /* learners of a host that was lost (--pool): no final state reached us */
    bool ran, verified;
};

struct pxs_state_machine;

struct sup {
    const struct cli_config *cfg;
    /* A library pool (src/lib): the state machine every learner runs; NULL for the main job.
     * The client is then the library's (its drive.client only counts the commands done, for
     * chaos), and verification compares the learners with each other. */
    const struct pxs_state_machine *sm;
    /* The main job: the state machine its learners run (sup_run), NULL for a library pool. */
    const struct pxs_state_machine *job;
    struct sup_env env;
    struct sup_members members;
    struct sup_chaos chaos;
    struct sup_failover failover;
    struct sup_drive drive;
    struct sup_record record;
    struct sup_verify verify;
    struct sup_net *net; /* --pool: the hosts of the pool (net.c); NULL for one host */
    int fatal;           /* nonzero: the exit code of a runtime failure */
};

/* setup.c */
int sup_setup_data_dir(struct sup *s);
/* In a child forked from the supervisor: closes its copy of the data dir's lock. */
void sup_lock_close_in_child(struct sup *s);
int sup_setup_segment(struct sup *s);
void sup_install_signals(void);
/* Puts back what sup_install_signals replaced and forgets a stop signal seen (a library pool
 * closes; the embedding process goes on). */
void sup_restore_signals(void);
/* The stop signal (common/signals.h: SIGINT, SIGTERM, SIGHUP, ...) that asks the run to end, 0
 * if none. */
int sup_signal(void);
/* The exit code that signal gives the run, 128 + the signal, 0 if none. */
int sup_signal_exit(void);
/* True once per SIGCHLD delivery: a child may be waiting to be reaped. */
bool sup_take_sigchld(void);
void sup_teardown(struct sup *s);
struct pool_node_shared *sup_node_shared(const struct sup *s, uint16_t i);
bool sup_has_role(const struct cli_config *c, uint16_t i, unsigned role);

/* identity.c: the data directory's stores held against the registry before the run
 * (0, or -1 with one line printed and fatal = EXIT_RUNTIME), and what they hold recorded after
 * it (teardown, the nodes stopped). */
int sup_identity_check(struct sup *s);
void sup_identity_note(struct sup *s);

/* watch.c: one thread per local node waits for its death on the node's life lock. */
int sup_watch_start(struct sup *s);
void sup_watch_stop(struct sup *s);

/* membership.c */
/* Announces the deaths the watchers saw (the segment's alive flags, the doorbells), before
 * SIGCHLD: the nodes start the fail-over while the kernel is still tearing the process down. */
void sup_take_early_deaths(struct sup *s);
/* Continues each id's incarnations and restarts from the registry (a kept data dir). */
void sup_members_load(struct sup *s);
int sup_spawn(struct sup *s, uint16_t i);
/* Reaps dead children: banks their counters, marks them down, restarts them unless the run
 * is stopping; a node that exited by itself sets s->fatal. */
void sup_reap(struct sup *s);
/* Starts the next incarnation of every node that died and is due a restart. */
void sup_restart_due(struct sup *s);
bool sup_up(const struct sup *s, uint16_t i);
/* Hang detection (README, "Fail-over and hung nodes"). A node is judged once its heartbeat has
 * not moved for SUP_HANG_NS: an idle node wakes once per 5 ms tick, so that is 20 missed
 * wake-ups, short enough that a hung leader is replaced well before the nodes' own election
 * timeout (300 ms). Silence alone proves nothing on a loaded machine (64 nodes on 2 cores wait
 * that long for a CPU), so the supervisor asks the kernel what the node did meanwhile
 * (/proc/PID/stat and schedstat): stopped (SIGSTOP, a debugger) -> hung; given at least
 * SUP_HANG_CPU_NS of CPU since the second half of its silence began without one loop
 * iteration -> hung (stuck in a loop); asleep (blocked on something other than its doorbell
 * tick) -> hung; runnable or in disk wait without the CPU time -> it was waiting for the
 * machine, not stuck: judged again later, hung only after SUP_HANG_MAX_NS of silence. */
#define SUP_HANG_NS (100ull * 1000 * 1000)
/* With long commands (--command-bytes over 8) a node may spend this long per byte of one
 * commit (DRIVER_BATCH_CMD_BYTES, or one command when it is longer) without a loop of its own:
 * silence allowed on top of SUP_HANG_NS (sup_hang_ns). */
#define SUP_HANG_NS_PER_CMD_BYTE 100ull
#define SUP_HANG_CPU_NS          (20ull * 1000 * 1000)
#define SUP_HANG_MAX_NS          (3000ull * 1000 * 1000)
/* --chaos N promises N kills. A kill whose moment came while no pick could die (the last
 * victim still restarting, a majority of acceptors to keep) is still owed when the last round is
 * decided; the drive goes on without rounds until it happened or this long passed. A victim
 * restarts in milliseconds, so a second is ample; the report says how many were planned. */
#define SUP_CHAOS_TAIL_NS (1000ull * 1000 * 1000)
/* Quick restarts a node may ask for in a row without applying anything in between. */
#define SUP_ASKED_RESTARTS_MAX 8u
#define SUP_ASKED_QUICK_NS     (1000ull * 1000 * 1000)
/* A learner hung this long when the rounds are decided is left out of convergence and of
 * verification: as long as the nodes get to stop (a SIGSTOP of a few seconds is waited for). */
#define SUP_LEFT_OUT_NS (5ull * 1000 * 1000 * 1000)
/* How long node i has been hung at now_ns (0: it is not). */
uint64_t sup_hung_ns(const struct sup *s, uint16_t i, uint64_t now_ns);
/* Up and not hung: a node that takes messages. */
bool sup_alive(const struct sup *s, uint16_t i);
/* The hang watch: a node whose heartbeat (ipc_ctl) has not moved for SUP_HANG_NS is marked
 * down in the segment, like a dead one (its peers elect another leader, drop what they queue
 * for it); when it moves again it is marked up and catches up. */
void sup_watch_hangs(struct sup *s);
/* Up, not a chaos victim waiting to be reaped, and loaded its current incarnation: what it
 * publishes in the segment (applied, final state) is its own, not a dead predecessor's. */
bool sup_settled(const struct sup *s, uint16_t i);
uint16_t sup_leader(const struct sup *s);
/* Waits until every node has loaded its store and a leader is elected. 0 or an exit code
 * (-1: a signal). */
int sup_wait_loaded(struct sup *s);
/* Records every node's row in the registry (last activity: now). */
void sup_members_note_all(struct sup *s);
/* Sets stop, waits for the nodes to exit, SIGKILLs those that do not. */
void sup_stop_nodes(struct sup *s);
/* SIGKILLs and reaps every node still running (error paths). */
void sup_kill_nodes(struct sup *s);
/* Counters of node i over every incarnation of this run (banked + the live one). */
struct sup_counters sup_counters_of(const struct sup *s, uint16_t i);

/* chaos.c */
int sup_chaos_plan(struct sup *s);
/* True when no chaos kill can ever be made: every node an acceptor, too few of them for one to
 * die and leave a majority up (fewer than three), and no --chaos-any. */
bool sup_chaos_cannot_kill(const struct cli_config *c);
/* Kills the nodes whose moment (rounds decided) has come. */
void sup_chaos_step(struct sup *s);
void sup_chaos_free(struct sup *s);

/* failover.c */
int sup_failover_init(struct sup *s); /* 0 or -ENOMEM */
void sup_failover_free(struct sup *s);
/* The drive starts: the first event comes --failover-every ms later. */
void sup_failover_start(struct sup *s, uint64_t now_ns);
/* Signals the leader when its moment has come; SIGCONTs a stopped one whose time is up. */
void sup_failover_step(struct sup *s, uint64_t now_ns);
/* The client saw a new decision of a round whose commit latency was latency_ns, replied by
 * node `from` (the leader that decided it). */
void sup_failover_decided(struct sup *s, uint64_t now_ns, uint16_t from, uint64_t latency_ns);
/* SIGCONTs a leader still stopped (before the nodes are told to stop). */
void sup_failover_finish(struct sup *s);
struct report_failover;
/* The events as the report shows them (per-event figures, percentiles, the plot). */
void sup_failover_report(struct sup *s, struct report_failover *out);

/* record.c */
/* Reads the last run's row and appends this run's: the rounds in doubt and the base of the new
 * rounds. 0, or -1 with s->fatal set (one line on stderr). */
int sup_record_begin(struct sup *s);
/* Makes hwm durable as this run's high-water mark, then lets the client submit up to it. */
int sup_record_hwm(struct sup *s, uint64_t hwm);
/* A library pool (src/lib): its client may hand out requests up to `submitted` (global: the
 * requests of earlier runs included), and every one up to `decided` completed. Durable before
 * any request above the last `submitted` goes out, so a node never holds more applied requests
 * than the registry says were ever submitted (identity.c's check of a restored backup). */
int sup_record_lib(struct sup *s, uint64_t submitted, uint64_t decided);
/* Every round in doubt is decided: records it. */
int sup_record_resolved(struct sup *s);
/* Writes how the run ended. */
void sup_record_end(struct sup *s, const char *outcome);

/* The silence after which a node is judged (SUP_HANG_NS, longer for long commands). */
uint64_t sup_hang_ns(const struct cli_config *c);
/* drive.c */
/* The client's window: --window, shrunk so long commands in flight stay within
 * PAYLOAD_INFLIGHT_BYTES (node/payload.h). */
uint32_t sup_client_window(const struct cli_config *c);
/* Resolves the rounds in doubt (s->record), then drives the new rounds. Returns 0 when every
 * round is decided, or the exit code that ended the run (-1: a signal). */
int sup_drive_run(struct sup *s);
/* Waits until every learner has applied the highest decided instance. */
bool sup_converge(struct sup *s);
/* Follows the leader: where requests go (drive.target), and whether the leader died or another
 * won, so every outstanding request must go again (sets drive.resend). */
void sup_drive_track(struct sup *s);
/* Reaps on SIGCHLD; true when the run must end (a signal or a fatal failure). */
bool sup_should_stop(struct sup *s);

/* verify.c */
/* Reads every node's final state and counters (after sup_stop_nodes). */
void sup_collect(struct sup *s);
/* Checks the final states against the client's own expectation. */
void sup_verify(struct sup *s);
/* A library pool: every learner's final state (commands applied, index, digests) against the
 * first one's, and commands applied at least `done` (what the client saw complete). */
void sup_verify_lib(struct sup *s, uint64_t done);

/* net.c: a pool across hosts. Every function is a no-op (or says "local") without --pool. */
/* Reads the pool file and this host's key; cfg_out = cfg with the pool file's nodes and roles.
 * 0, or -1 after one line on stderr (exit 2). */
int sup_net_load(struct sup *s, const struct cli_config *cfg, struct cli_config *cfg_out);
/* True when node i runs on this host (always without --pool). */
bool sup_net_local(const struct sup *s, uint16_t i);
/* Node i is on another host whose final states never arrived (the host is down or lost). */
bool sup_net_lost(const struct sup *s, uint16_t i);
/* The name of node i's host ("" for one host). */
const char *sup_net_host_name(const struct sup *s, uint16_t i);
/* True when this host runs the client (always without --pool). */
bool sup_net_first(const struct sup *s);
/* A remote node as the gateway mirrors it: up, and up with its current incarnation loaded. */
bool sup_net_remote_up(const struct sup *s, uint16_t i);
bool sup_net_remote_settled(const struct sup *s, uint16_t i);
/* After the segment exists, before the nodes fork: detaches the broadcast cursors nobody
 * reads here and starts the gateway. 0 or -1 (one line on stderr). */
int sup_net_start(struct sup *s);
/* A reaped child that is no node: the gateway's death ends the run. */
void sup_net_reaped(struct sup *s, pid_t pid, int status);
/* First host, after sup_stop_nodes: waits for the other hosts' final states. */
void sup_net_collect(struct sup *s);
/* Another host: serves until the first host says stop, stops the nodes, hands over their
 * final states. Returns the exit code. */
int sup_net_follow(struct sup *s);
/* The gateway's counters for the report (hosts 0 without --pool). */
struct report_net;
void sup_net_report(const struct sup *s, struct report_net *out);
/* Every exit path: tells the other hosts we are done, stops the gateway, frees. */
void sup_net_teardown(struct sup *s);

#endif
