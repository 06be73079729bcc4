/* sim.h: the deterministic simulator's internal contract (tests/sim only).
 *
 * One process holds N nodes, each a Paxos core (struct px_node) run by the real node driver
 * (src/node/driver.h) over a simulated transport (rings on a simulated network) and a memory
 * store with the real crash contract; one simulated client; and the checker. Everything is
 * driven by virtual time (ticks) and one seeded PRNG, so a seed replays exactly.
 * Single-threaded; nothing here is shared.
 *
 * Modules: sim_world.c (nodes and their activation, crashes, client, time), sim_net.c
 * (network, rings, each node's transport), sim_store.c (each node's store), sim_check.c
 * (invariants), sim_script.c (scenario scripts), px_sim.c (CLI, random fault driver, soak).
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "node/driver.h"
#include "px.h"
#include "supervisor/client.h"

/* Pools of 3..9 nodes exercise every quorum shape the faults need (minority/majority splits,
 * non-acceptor nodes) and keep a seed cheap. */
#define SIM_NODES_MAX 9
/* The client endpoint id is cfg.nodes (the supervisor in the real system); arrays indexed by
 * endpoint need one more slot. */
#define SIM_ENDPOINTS_MAX (SIM_NODES_MAX + 1)
/* Requests per run: bounds the client's tables. Long seeds need more than PX_LOG_MAX (4096)
 * instances so the core's log ring wraps around. */
#define SIM_ROUNDS_MAX 16384
/* Clients: as many as the core's exactly-once table holds (more would evict a slot and
 * void that client's exactly-once guarantee, by design). */
#define SIM_CLIENTS_MAX PX_CLIENTS_MAX
/* Messages in flight in the whole network; beyond it a send is a counted drop (a full ring). */
#define SIM_NET_MAX (1u << 16)
/* Messages one driver iteration reads (the driver's bounded batch, cfg.batch_max). */
#define SIM_BATCH_MAX 64
/* Driver iterations of one activation, while each reads a full batch: the node process drains
 * its rings between two ticks the same way. 256 x 64 messages is more than a node ever has
 * queued; the bound only keeps a runaway activation finite. */
#define SIM_RUNS_PER_TICK_MAX 256u
/* Ring and outbox sizes: the real defaults (--ring-slots 4096, transport_shm's OUTBOX_MAX);
 * a seed may draw them tiny (sim_draw_net) so that rings and outboxes fill. */
#define SIM_RING_SLOTS_MAX 4096u
#define SIM_OUTBOX_MAX     4096u
/* Ticks a broadcast stays blocked by a consumer a full ring behind before the producer detaches
 * it: transport_shm waits 200 ms, two thirds of the node's election timeout; 10 ticks is about
 * half of a drawn election timeout (10..29 ticks). */
#define SIM_BCAST_STALL_TICKS 10u
/* The longest command the simulated client submits (--cmd-bytes, --cmd-sizes: sim_cmd.c). */
#define SIM_CMD_BYTES_MAX (256u << 10)

enum sim_fault {
    SIM_F_DROP,
    SIM_F_DUP,
    SIM_F_REORDER,
    SIM_F_DELAY,
    SIM_F_PARTITION,
    SIM_F_CRASH,
    SIM_F_RESTART,
    SIM_F_LAG,
    SIM_F_LEADER,
    SIM_F_ROTATION,
    SIM_F_ROLES,        /* a node gained or lost the proposer or learner role (px_node_set_roles) */
    SIM_F_RING_FULL,    /* sends that found their ring full and waited in the outbox */
    SIM_F_OUTBOX_FULL,  /* sends a full outbox refused (-ENOBUFS: the window shrinks) */
    SIM_F_LAGGED,       /* broadcast reads that reported "lagged, missed = k" */
    SIM_F_HANG,         /* hung-consumer episodes: a live node that stops reading for a while */
    SIM_F_CLIENT_CRASH, /* the supervisor's client killed; a continued run resolves its doubt */
    SIM_F_AMNESIA,      /* --amnesia: a node's store lost while it was down */
    SIM_F_COUNT,
};
extern const char *const sim_fault_names[SIM_F_COUNT];

/* Violation kinds: what --expect-violation names. */
enum sim_viol {
    SIM_V_NONE,
    SIM_V_AGREEMENT, /* two values for one instance, or a decision no quorum accepted */
    SIM_V_VALIDITY,  /* a decided value nobody submitted */
    SIM_V_ONCE,      /* a request applied twice, or its duplicate flag wrong */
    SIM_V_PROMISE,   /* promised ballot regressed, or accepted/promised below it */
    SIM_V_PERSIST,   /* a reply sent before its record was durable */
    SIM_V_ORDER,     /* entries applied out of log order */
    SIM_V_STATE,     /* a learner's state differs from the agreed log's */
    SIM_V_LIVENESS,  /* not finished within the bound after faults healed */
    SIM_V_FINAL,     /* learners differ at the end or from the agreed log, its value != F(R+1) */
    SIM_V_SCRIPT,    /* a scenario check failed */
    SIM_V_ASSERT,    /* the core's own PX_ASSERT fired */
    SIM_V_CLIENT,    /* the continued client's expectation differs from what the pool holds */
    SIM_V_COMMAND,   /* a learner applied bytes other than the command the client submitted */
    SIM_V_COUNT,
};
extern const char *const sim_viol_names[SIM_V_COUNT];

/* Where a node dies inside a flush point (the real crash contract of the store): before the
 * commit (the batch is lost), after it before any send (its messages are lost), part way
 * through the sends (the rest is lost). */
enum sim_crash_point { SIM_CP_NONE, SIM_CP_BEFORE_COMMIT, SIM_CP_BEFORE_SEND, SIM_CP_MID_SEND };

/* --- PRNG: splitmix64, one stream per run --- */
struct sim_rng {
    uint64_t s;
};
uint64_t sim_rng_next(struct sim_rng *r);
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
bool sim_rng_chance(struct sim_rng *r, double p);      /* true with probability p */

/* --- network (sim_net.c) --- */
enum sim_ring { SIM_RING_NONE, SIM_RING_P2P, SIM_RING_BCAST };
struct sim_env {
    uint64_t due;   /* tick at which it may be delivered */
    uint64_t order; /* tie-break within a tick: send order, or random when reordered */
    uint64_t seq;   /* global send order, for counting observed reorders */
    uint16_t to;    /* one endpoint (PX_TO_ALL already expanded) */
    uint8_t ring;   /* enum sim_ring: the slot it holds until read (none: a wire duplicate) */
    uint32_t epoch; /* SIM_RING_BCAST: the consumer's cursor epoch when it was published */
    struct px_msg m;
};

/* One consumer's cursor on a producer's broadcast ring. */
struct sim_bcast_cursor {
    uint32_t unread; /* published to it and not read yet (in flight or delivered) */
    uint32_t epoch;  /* bumped on detach: envelopes of an older epoch were overwritten */
    uint64_t missed; /* lost since it was detached, reported on its next read */
    bool attached;   /* false: detached, its next read reports lagged */
};
struct sim_bcast {
    bool stalled;           /* the last flush could push nothing */
    uint64_t stalled_since; /* tick the stall began */
    struct sim_bcast_cursor c[SIM_NODES_MAX];
};

/* --- one node's durable store (what survives a crash) --- */
struct sim_slot {
    px_ballot_t ballot; /* 0 = empty */
    struct px_value value;
    unsigned char *cmd; /* the command's bytes (a copy) when value has PX_VALUE_PAYLOAD, or NULL */
    uint32_t cmd_len;
};
struct sim_store {
    /* --sm: the state machine's snapshot (store_put_sm_snapshot), when one was committed */
    bool sm_has;
    struct store_sm_snap sm_head;
    uint8_t *sm_bytes;
    size_t sm_len;
    px_ballot_t promised;
    struct px_history fib;
    px_inst_t truncated;  /* entries <= this were dropped (PX_REC_TRUNCATE) */
    struct sim_slot *acc; /* accepted, indexed by instance */
    struct sim_slot *dec; /* decided (ballot 1 = present), indexed by instance */
    size_t cap;           /* length of acc and dec */
};

struct sim;
struct sim_node {
    struct sim *s; /* back pointer for the driver's hooks */
    uint16_t id;
    struct px_node *px;
    void *mem;
    size_t mem_bytes;
    bool up;
    uint32_t incarnation;
    /* The node process, while up: the driver over its transport and its store handle. */
    struct driver drv;
    struct transport *tp;
    struct store *store;
    uint64_t clock;              /* the node's clock, in ticks (the driver's tick_ns is 1) */
    px_ballot_t promised_before; /* durable promise when the current batch began */
    uint8_t crash_at;            /* enum sim_crash_point drawn for the flush point under way */
    uint32_t crash_after;        /* SIM_CP_MID_SEND: dies after this many sends */
    uint8_t crash_armed;         /* a script's crash point for the next flush point it fits */
    uint32_t crash_armed_after;  /* ... SIM_CP_MID_SEND: after this many sends */
    uint64_t hang_until;         /* a hung consumer: not run before this tick */
    uint64_t hang_from;
    struct sim_store st;
    /* --amnesia: its store was lost while it was down. The pool keeps it down for good, as the
     * supervisor refuses a data dir whose store is missing (an acceptor must never vote with a
     * memory it does not have); PX_SIM_BUG_BLANK_ACCEPTOR_VOTES restarts it blank instead. */
    bool forgot;
    px_inst_t last_applied; /* of this incarnation's apply stream */
    bool was_leader;
    uint32_t lag;          /* 0 = normal; k = processes every k-th tick, few messages */
    uint64_t lag_until;    /* tick at which lagging ends */
    uint64_t restart_at;   /* tick at which a crashed node restarts (random mode) */
    struct sim_env *inbox; /* delivered, not yet stepped */
    size_t inbox_len, inbox_cap;
    struct px_value *subq; /* client values handed to this node, not yet accepted by it */
    size_t subq_head, subq_len, subq_cap; /* [subq_head, subq_len) queued; both 0 when empty */
    uint8_t *cmd_buf; /* the bytes of subq's head command (env.submit_cmd), cmds.max long */
    /* --sm: a library pool's state machine (node/sm.h) in this node's process: a hash chain of
     * every command it applied, and its count; emptied at every start, like process memory. */
    struct pxs_state_machine sm;
    uint64_t sm_hash, sm_count;
    uint8_t sm_result[8];
    bool sm_made; /* --sm-lib: sm is an instance of the user's factory, not freed yet */
};

/* One client request (round r). */
struct sim_req {
    uint32_t client_id, seq;
    uint64_t increment;
    uint64_t sent_at;  /* tick of the last (re)submission; 0 = never sent */
    uint64_t done_at;  /* tick it was first seen applied; 0 = not yet */
    bool replied;      /* a PX_MSG_CLIENT_REPLY reached the client */
    uint16_t target;   /* node of the last submission */
    px_inst_t decided; /* lowest instance it was decided at */
    uint32_t cmd_len;  /* its command's length (sim_cmd.c); > CMD_INLINE_BYTES: PX_VALUE_PAYLOAD */
};

/* Per-instance knowledge of the checker. */
struct sim_acc_rec {
    px_ballot_t ballot;
    struct px_value value;
    uint64_t acceptors; /* bit per node that durably accepted (instance, ballot) */
};
struct sim_inst {
    bool chosen;
    struct px_value value;
    uint16_t first_node;
    bool q_chosen; /* a quorum of acceptors durably accepted q_value at one ballot */
    struct px_value q_value;
    struct sim_acc_rec *accs; /* every (ballot, value) any acceptor durably accepted */
    uint32_t accs_len, accs_cap;
    bool have_ref;      /* ref_* valid: instances 1..i all chosen */
    uint64_t ref_value; /* the Fibonacci state machine's value after applying 1..i */
    uint64_t ref_requests;
    uint64_t ref_digest; /* the history's digest chain over 1..i (px.h), computed here */
    bool have_digest;
    uint64_t digest;   /* first digest a learner reported at applied == i */
    bool have_cmd;     /* a learner applied a command with bytes beside it here: */
    uint16_t cmd_node; /* the first, */
    uint32_t cmd_len;  /* the length and */
    uint32_t cmd_crc;  /* the CRC-32C of the bytes it applied */
};

/* The lengths of the client's commands (sim_cmd.c): each request's length is drawn from
 * [min, max] by its key, a quarter of them inline (<= CMD_INLINE_BYTES, when min allows), one
 * in twenty exactly max, the rest log-uniform; max 0: every command is the 8 bytes of its
 * increment, as before. */
struct sim_cmds {
    uint32_t min, max;
    bool sm; /* --sm: every learner also applies them to a state machine (struct sim: sm_on) */
    const struct sim_sm_lib *sm_lib; /* --sm-lib: the user's state machine, else the tiny one */
};

/* --sm-lib PATH: a user's state machine from a shared object (paxos-shm/paxos_shm_sim.h): its
 * factory makes one instance per node incarnation, free (optional) drops it at the crash. */
struct sim_sm_lib {
    const char *path;
    int (*make)(uint32_t node, struct pxs_state_machine *out);
    void (*free)(uint32_t node, struct pxs_state_machine *sm);
};

struct sim_opts {
    uint64_t seed;
};

/* The supervisor's client, crashed and continued (sim_client.c). */
enum sim_cc_phase { SIM_CC_FIRST, SIM_CC_RESOLVE, SIM_CC_NEXT, SIM_CC_DONE };
struct sim_cc {
    bool on;
    enum sim_cc_phase phase;
    struct client cl;          /* the client process's memory (lost in a crash) */
    struct client_record rec;  /* its durable record (survives) */
    struct client_resume from; /* where the continued run started */
    uint32_t window, rounds_first, rounds_next;
    uint64_t crash_at; /* tick the first run is killed; 0 = it ends cleanly */
    uint32_t crashes;
    uint64_t ns_per_tick; /* the client's clock */
    /* The highest instance a CLIENT_REPLY named, whichever run it reached: chosen, so every
     * learner must apply that far before the end check (sim_converged). */
    px_inst_t replied_max;
};

struct sim {
    struct sim_rng rng;
    struct sim_opts opt;
    struct px_config cfg; /* template; id set per node */
    uint16_t n;
    uint32_t acceptors; /* count of acceptor nodes; quorum = acceptors / 2 + 1 */
    uint64_t now;
    bool trace;
    FILE *out;

    struct sim_node node[SIM_NODES_MAX];

    /* membership: the supervisor's failure detector (perfect for crashes) */
    uint64_t alive_mask;
    uint64_t membership_epoch;
    bool crash_ok; /* the driver call under way may die at a failpoint */
    /* Runs when a node waits on its transport inside an activation; NULL: that is reported as
     * a liveness violation (nothing else could ever drain its rings). Tests set it. */
    void (*wait_hook)(struct sim *s, uint16_t id, uint32_t blocked_on);

    /* rings (sim_net.c) */
    uint32_t ring_slots, bcast_slots, outbox_max;
    uint32_t ring_used[SIM_ENDPOINTS_MAX][SIM_ENDPOINTS_MAX]; /* [from][to] p2p slots held */
    struct sim_bcast bcast[SIM_NODES_MAX];
    /* hung consumers (drawn by sim_draw_net, own PRNG stream) */
    struct sim_rng net_rng;
    double p_hang;
    uint64_t hang_end; /* no hang lasts past this tick (the end of the chaos phase) */

    /* network */
    struct sim_env *heap;
    size_t heap_len, heap_cap;
    uint64_t send_seq;
    uint64_t data_sent; /* of them DATA (a command's stream, payload.h) */
    uint64_t link_last_seq[SIM_ENDPOINTS_MAX][SIM_ENDPOINTS_MAX];
    /* The due tick of the last DATA on each link, [from][to][broadcast ring]: a command's stream
     * keeps its order on a link (payload.h), as the rings and sockets keep it, so jitter and
     * reordering never reorder the chunks among themselves (drops, duplicates and delay spikes
     * still hit them; a spike holds the chunks behind it). */
    uint64_t data_due[SIM_ENDPOINTS_MAX][SIM_ENDPOINTS_MAX][2];
    bool blocked[SIM_ENDPOINTS_MAX][SIM_ENDPOINTS_MAX]; /* [from][to] */
    uint32_t lat_min, lat_max;                          /* ticks */
    double p_drop, p_dup, p_reorder, p_delay;
    uint32_t delay_max;
    double p_crash_mid; /* chance a node dies in the middle of its batch */

    /* client */
    struct sim_req req[SIM_ROUNDS_MAX + 1]; /* 1-based round */
    uint32_t rounds;                        /* R */
    uint32_t submitted;                     /* rounds 1..submitted handed out at least once */
    uint32_t done;                          /* rounds seen applied */
    uint32_t oldest;  /* lowest round not yet seen applied (the window's left edge) */
    uint32_t clients; /* rounds round-robin over client ids 1..clients */
    uint32_t window;  /* span of rounds the client keeps in flight (< PX_DEDUP_SPAN) */
    uint32_t resubmit_ticks;
    uint64_t seq_round[SIM_CLIENTS_MAX + 1][SIM_ROUNDS_MAX + 1]; /* (client, seq) -> round */
    struct sim_cmds cmds; /* the commands' lengths (sim_cmd.c) */
    /* --sm: every learner runs a tiny state machine through the driver (sim_world.c); the end
     * check compares them (sim_check_final). The client assembles the results streamed ahead of
     * each CLIENT_REPLY (client_pay) and checks them: replies with a result, and without. */
    bool sm_on;
    const struct sim_sm_lib *sm_lib; /* --sm-lib: every learner runs the user's instead */
    struct payload_plane client_pay;
    uint64_t results_ok, results_lost;
    uint64_t cmd_bytes;  /* bytes of the commands of rounds 1..rounds that travel beside */
    uint64_t cmd_chunks; /* the DATA messages of one stream of each of them (payload.h) */

    /* checker */
    struct sim_inst *inst;
    size_t inst_cap;
    px_inst_t ref_upto;
    px_inst_t decided_max;
    uint16_t last_leader;
    enum sim_viol viol;
    char viol_msg[512];

    uint64_t faults[SIM_F_COUNT];
    uint64_t steps;

    struct sim_cc cc; /* cc.on: the client is the supervisor's (sim_client.c) */
};

/* sim_world.c */
int sim_init(struct sim *s, const struct px_config *cfg, uint64_t seed, FILE *out, bool trace);
/* sim_init with commands of the lengths cmds names (NULL: 8 bytes each, as sim_init): every
 * node's driver takes commands up to cmds->max. */
int sim_init_cmds(struct sim *s, const struct px_config *cfg, uint64_t seed,
                  const struct sim_cmds *cmds, FILE *out, bool trace);
void sim_free(struct sim *s);
void sim_set_rounds(struct sim *s, uint32_t rounds, uint32_t clients, uint32_t window);
void sim_crash(struct sim *s, uint16_t id);
/* Scripts: node id dies at `point` of its next flush point that persists something (or, for
 * SIM_CP_MID_SEND, that sends more than `after` messages), after `after` sends. */
void sim_crash_at(struct sim *s, uint16_t id, enum sim_crash_point point, uint32_t after);
/* Node id stops running (a hung consumer, SIGSTOP) for `ticks` ticks. */
void sim_hang(struct sim *s, uint16_t id, uint64_t ticks);
void sim_restart(struct sim *s, uint16_t id);
void sim_heal(struct sim *s);
void sim_set_roles(struct sim *s, uint16_t id, uint64_t roles);
void sim_block(struct sim *s, uint16_t from, uint16_t to, bool blocked);
void sim_tick(struct sim *s, bool deliver, bool tick_nodes, bool client);
void sim_client_submit(struct sim *s, uint32_t count, int to);
void sim_activate(struct sim *s, uint16_t id, bool tick);
size_t sim_deliver_matching(struct sim *s, int from, int to, int type, size_t count, bool drop);
bool sim_quiet(const struct sim *s);
bool sim_converged(const struct sim *s, bool all);
uint16_t sim_pick_proposer(struct sim *s, uint16_t avoid);
uint64_t sim_fib(uint32_t k);
const char *sim_msg_name(uint8_t type);
int sim_msg_type_parse(const char *name);
void sim_client_receive(struct sim *s, const struct px_msg *m);
/* Hands global round `round` to node `to` (-1: a proposer the client picks). */
void sim_submit_round(struct sim *s, uint32_t round, int to);
/* True when the client handed out every round it will (and, for the supervisor's client,
 * saw each decided). */
bool sim_client_all_out(const struct sim *s);

/* sim_client.c: the supervisor's client, crashed and continued, in the seeds that draw it
 * (before the first tick; false: the simulator's own client). */
bool sim_cc_draw(struct sim *s, uint64_t chaos_ticks, bool crash);
void sim_cc_step(struct sim *s);
void sim_cc_receive(struct sim *s, const struct px_msg *m);
bool sim_cc_done(const struct sim *s);
void sim_cc_check_final(struct sim *s);

/* sim_cmd.c: the client's commands. A request's command is a function of its key (cmd_key)
 * and its length: bytes 0..7 the increment (little endian, as the value carries it), bytes
 * 8..11 the length (little endian), the rest a pattern of the key, the length and the offset;
 * the checker recomputes every byte a learner applies. */
uint32_t sim_cmd_len(const struct sim *s, uint64_t key);
void sim_cmd_fill(uint64_t key, uint64_t increment, uint32_t len, uint8_t *out);
/* The first offset at which bytes[0..len) differs from sim_cmd_fill(key, increment, len), or
 * len when they agree. */
uint32_t sim_cmd_mismatch(uint64_t key, uint64_t increment, uint32_t len, const uint8_t *bytes);

/* sim_net.c */
void sim_trace_msg(struct sim *s, const char *what, const struct px_msg *m, uint16_t to);
/* Puts m on the wire outside any ring (faults: drop, duplicate, reorder, delay). */
void sim_send(struct sim *s, const struct px_msg *m, bool faults);
void sim_arrive(struct sim *s, const struct sim_env *e);
void sim_deliver_due(struct sim *s);
size_t sim_net_take(struct sim *s, int from, int to, int type, size_t count, bool drop);
void sim_net_crash(struct sim *s, uint16_t id);
void sim_bcast_detach(struct sim *s, uint16_t from, uint16_t c);
struct transport *sim_tp_create(struct sim *s, uint16_t id);
uint32_t sim_tp_queued(struct transport *t);
uint32_t sim_tp_queued_to(struct transport *t, uint16_t to);

/* sim_store.c */
struct store *sim_store_open(struct sim *s, uint16_t id);
/* Loses everything node id's store holds (a deleted file): it is a fresh store again. */
void sim_store_wipe(struct sim *s, uint16_t id);
/* Frees what a node's durable store holds (the end of a run) and zeroes it. */
void sim_store_free(struct sim_store *st);

/* sim_check.c */
void sim_violate(struct sim *s, enum sim_viol kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_check_commit(struct sim *s, uint16_t id, const struct px_ready *r,
                      px_ballot_t promised_before);
void sim_check_apply(struct sim *s, uint16_t id, const struct px_applied *a, px_inst_t snapshot);
/* An applied entry whose command travels beside its value (env.applied_cmd): cmd[0..len) must
 * be the bytes the client submitted for that request, and the bytes every other learner
 * applied at that instance (violation `command`). */
void sim_check_cmd(struct sim *s, uint16_t id, const struct px_applied *a, const uint8_t *cmd,
                   uint32_t len);
void sim_check_state(struct sim *s, uint16_t id);
void sim_check_leaders(struct sim *s);
void sim_check_final(struct sim *s);
void sim_note_decided(struct sim *s, uint16_t id, px_inst_t i, const struct px_value *v);
void sim_note_accepted(struct sim *s, uint16_t id, const struct px_rec *r);
struct sim_inst *sim_inst_at(struct sim *s, px_inst_t i);
/* What the agreed log implies after applying instances 1..i: the Fibonacci value, the count of
 * requests and the history's digest (i = 0: 1, 0, 0). False when the checker has not seen
 * 1..i all chosen. */
bool sim_ref_at(const struct sim *s, px_inst_t i, uint64_t *value, uint64_t *requests,
                uint64_t *digest);

/* sim_script.c: runs the script at path; with a golden trace (after `-- expect --`) the run's
 * summary must equal it; rewrite: the summary replaces the golden trace in the file instead.
 * Returns 0 when every command and check passed. */
int sim_script_run(const char *path, bool trace, bool rewrite);

/* sim_golden.c: golden traces of scripts */
extern const char sim_golden_marker[]; /* "-- expect --\n" */
void sim_golden_summary(const struct sim *s, FILE *out);
/* 0 when want == got; else prints the first differing lines to stderr and returns -1. */
int sim_golden_compare(const char *path, const char *want, const char *got);
/* Keeps the first script_bytes of path, writes the marker and got after them. */
int sim_golden_rewrite(const char *path, long script_bytes, const char *got);

#endif
