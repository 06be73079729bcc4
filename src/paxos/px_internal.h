/* px_internal.h: the core's private state, shared by its role modules (px_node.c, px_acceptor.c,
 * px_proposer.c, px_learner.c). Nothing outside src/paxos includes it. */
#ifndef PX_INTERNAL_H
#define PX_INTERNAL_H

#include "px.h"

/* The node id goes into the top 16 bits of the pool seed before it seeds the back-off stream:
 * every node draws its own stream from one seed, and ids (< 2^16) never overlap seed bits
 * that differ between runs with small seeds. */
#define PX_SEED_ID_SHIFT 48
/* A decided entry reported in a promise outranks every ballot. */
#define PX_BALLOT_DECIDED UINT64_MAX
/* TRUNCATE records are emitted once the base moved this far: one store delete per 64
 * instances instead of one per instance (a lower truncation point is always safe). */
#define PX_TRUNCATE_STEP 64u
/* Ticks between catch-up requests while a gap persists (a lost request or reply). */
#define PX_CATCHUP_RETRY_TICKS 8u
/* Ticks without commit progress before the leader retransmits its in-flight ACCEPTs. */
#define PX_RESEND_TICKS 8u
/* A learner also acknowledges every this many applied instances (besides on each heartbeat),
 * so a leader that is no learner can free its ring long before the ring is full. */
#define PX_ACK_EVERY (PX_LOG_MAX / 8)
/* Election back-off jitter: up to 1 / PX_ELECTION_JITTER_DIV of an election timeout, enough
 * to split proposers of equal rank, small against the whole timeout between ranks. */
#define PX_ELECTION_JITTER_DIV 4u
/* Initial congestion window: small, AIMD grows it by one per decided instance. */
#define PX_CWND_INIT 8u
/* AIMD's multiplicative decrease (TCP's factor): a send that found its ring full halves the
 * window, so congestion shrinks it fast; it grows back by one per decided instance. */
#define PX_CWND_DECREASE_DIV 2u
/* A learner sends every PX_CATCHUP_LEADER_EVERY_REQS-th catch-up request to the leader and
 * the others to its live peers in turn: the leader's log holds every recent decision, but a
 * leader that does not answer (dead, cut off, lagging) must not stall the learner. */
#define PX_CATCHUP_LEADER_EVERY_REQS 2u
/* A snapshot is one SNAPSHOT header message, then one SNAPSHOT_PART per client. */
#define PX_SNAPSHOT_HEADER_MSGS 1u
/* Output room a forwarding of held client values leaves to the rest of its call: the replies
 * of the message being stepped (the ACCEPTED of the leader's ACCEPT that triggered it, a
 * catch-up request) and the call's continued work. Without it an acceptor holding more values
 * than a call can send dropped that ACCEPT for want of room, and with a quorum of every
 * acceptor nothing was decided until the leader resent it. What is left is forwarded on the
 * leader's next message. */
#define PX_FORWARD_RESERVE (PX_STEP_OUTPUT_MAX / 2)

/* Output room (px_room_*) a step keeps or needs, so that what it must still add finds a slot.
 * One message kept free by the loops that emit many (forwarded values, promise entries,
 * catch-up entries, decisions): the PROMISE that closes a stream, the ACCEPTED or DECIDE a
 * flush adds at the end of the same call. */
#define PX_ROOM_SPARE_MSGS 1u
/* One record kept free by the apply loops: the TRUNCATE the end of the call may add. */
#define PX_ROOM_SPARE_RECS 1u
/* An acceptance: its ACCEPTED, and before it the flush of a pending range of another ballot. */
#define PX_ROOM_ACCEPT_MSGS 2u
/* An acceptance's records: the raised PROMISE and the ACCEPTED. */
#define PX_ROOM_ACCEPT_RECS 2u
/* A campaign: the PREPARE, and the HEARTBEAT of a leader that its own promise elects (a pool
 * of one acceptor); one record: the PROMISE of its ballot. */
#define PX_ROOM_CAMPAIGN_MSGS 2u
#define PX_ROOM_CAMPAIGN_RECS 1u
/* A proposal (or its resend): the ACCEPT, the CLIENT_REPLY of a decision a lone acceptor makes
 * at once, and the spare; its records: the leader's own acceptance and the spare. */
#define PX_ROOM_PROPOSE_MSGS 3u
#define PX_ROOM_PROPOSE_RECS (PX_ROOM_ACCEPT_RECS + PX_ROOM_SPARE_RECS)
/* A hand-over: the last DECIDE, the TAKEOVER and at least one forwarded client value. */
#define PX_ROOM_HANDOVER_MSGS 3u

/* log entry flags */
#define PX_E_ACCEPTED 0x01u /* acc_*: accepted by this acceptor, or seen in an ACCEPT (learner) */
#define PX_E_DECIDED  0x02u /* acc_value is the chosen value */
#define PX_E_PROPOSED 0x04u /* leader: ACCEPT(ballot, i, prop_value) sent in this leadership */
#define PX_E_REPORTED 0x08u /* candidate: prop_* is the highest report of phase 1 */

struct px_entry {
    px_inst_t instance; /* which instance the slot holds (slots below the base are stale) */
    px_ballot_t acc_ballot;
    struct px_value acc_value;
    px_ballot_t prop_ballot;
    struct px_value prop_value;
    uint64_t acc_mask; /* leader: acceptors that accepted prop_value at the current ballot */
    uint16_t acc_count;
    uint16_t flags;
};

enum px_state {
    PX_FOLLOWER,
    PX_CANDIDATE,
    PX_LEADER,
};

/* Phase 1 bookkeeping of one acceptor's promise stream. */
struct px_promise_slot {
    px_ballot_t ballot;
    uint32_t next_seq; /* sequence number expected next */
    bool broken;       /* an entry was lost, duplicated or reordered: this promise won't count */
};

/* An acceptor streams a long promise over several calls (PX_STEP_OUTPUT_MAX). */
struct px_promise_out {
    bool active;
    uint16_t to;
    px_ballot_t ballot;
    px_inst_t from, next;
    uint32_t seq;
};

struct px_node {
    struct px_config cfg;
    uint64_t alive_mask;
    uint32_t quorum;
    uint64_t rng;
    struct px_stats stats;
    /* per-call output limits (PX_STEP_OUTPUT_MAX) */
    uint32_t lim_recs, lim_msgs, lim_apply;

    /* log ring */
    px_inst_t base;      /* lowest instance the ring holds; all below were truncated */
    px_inst_t log_hi;    /* highest instance ever stored */
    px_inst_t chosen_hi; /* every instance <= chosen_hi is chosen (maybe value unknown here) */
    px_inst_t trunc_sent;

    /* acceptor */
    px_ballot_t promised;
    px_ballot_t ack_ballot; /* pending coalesced ACCEPTED [ack_lo, ack_hi] for ack_ballot */
    px_inst_t ack_lo, ack_hi;
    struct px_promise_out pout;

    /* learner */
    struct px_history fib;
    px_ballot_t dec_ballot; /* last DECIDE seen: every instance <= dec_hi chosen by dec_ballot */
    px_inst_t dec_hi, dec_scan;
    px_inst_t ack_sent;     /* applied index last acknowledged to the leader */
    px_inst_t hint_seen;    /* highest truncation hint heard or sent: a learner holds that far */
    uint32_t catchup_wait;  /* ticks until a new request may go out */
    uint32_t catchup_tries; /* requests since the last progress: alternate leader / learners */
    uint16_t catchup_peer;  /* the peer asked last */
    struct px_history snap; /* snapshot being received */
    uint32_t snap_want, snap_mask, snap_got;
    bool snap_active;

    /* proposer */
    enum px_state state;
    px_ballot_t ballot;   /* own ballot while candidate or leader */
    px_ballot_t max_seen; /* highest ballot seen anywhere */
    uint16_t leader;      /* PX_NODE_NONE when unknown */
    px_ballot_t leader_ballot;
    uint32_t elapsed, timeout; /* follower: silence; candidate: phase 1 time */
    uint32_t hb_elapsed, resend_elapsed;
    px_inst_t p1_from, p1_start, p1_max;
    uint64_t promise_mask;
    uint32_t promise_count;
    struct px_promise_slot promises[PX_NODES_MAX];
    px_inst_t next;   /* leader: next instance to propose */
    px_inst_t commit; /* leader: every instance <= commit is decided */
    px_inst_t decide_sent;
    px_inst_t resend_commit;
    uint32_t cwnd;
    uint32_t rotate_count;
    bool handing_over;
    px_inst_t acked[PX_NODES_MAX];

    /* client values waiting for a leader or a window slot */
    struct px_value queue[PX_QUEUE_MAX];
    uint32_t q_head, q_len;

#ifdef PX_BUG_REPLY_BEFORE_PERSIST
    struct px_rec deferred[PX_STEP_OUTPUT_MAX];
    uint32_t deferred_len;
#endif

    struct px_entry log[PX_LOG_MAX];
};

/* px_node.c: shared helpers */
bool px_has_role(const struct px_node *n, uint16_t node, uint64_t role);
bool px_is_alive(const struct px_node *n, uint16_t node);
struct px_msg *px_out_msg(struct px_node *n, struct px_ready *out, uint8_t type, uint16_t to);
struct px_rec *px_out_rec(struct px_node *n, struct px_ready *out, uint8_t type);
uint32_t px_room_msgs(const struct px_node *n, const struct px_ready *out);
uint32_t px_room_recs(const struct px_node *n, const struct px_ready *out);
uint32_t px_room_apply(const struct px_node *n, const struct px_ready *out);
uint64_t px_rand(struct px_node *n);
struct px_entry *px_log_get(struct px_node *n, px_inst_t i);
struct px_entry *px_log_make(struct px_node *n, px_inst_t i, struct px_ready *out);
void px_log_truncate(struct px_node *n, px_inst_t upto, struct px_ready *out);
void px_note_chosen(struct px_node *n, px_inst_t hi);

/* px_acceptor.c */
void px_acceptor_prepare(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_acceptor_accept(struct px_node *n, const struct px_msg *m, struct px_ready *out);
bool px_acceptor_accept_local(struct px_node *n, px_ballot_t b, px_inst_t i,
                              const struct px_value *v, struct px_ready *out);
bool px_acceptor_promise_local(struct px_node *n, px_ballot_t b, struct px_ready *out);
void px_acceptor_continue(struct px_node *n, struct px_ready *out);
void px_acceptor_flush(struct px_node *n, struct px_ready *out);
void px_acceptor_nack(struct px_node *n, const struct px_msg *m, struct px_ready *out);

/* px_proposer.c */
void px_proposer_observe(struct px_node *n, px_ballot_t b, struct px_ready *out);
void px_proposer_heard_leader(struct px_node *n, px_ballot_t b, struct px_ready *out);
void px_proposer_promise_entry(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_proposer_promise(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_proposer_nack(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_proposer_accepted(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_proposer_ack(struct px_node *n, const struct px_msg *m);
void px_proposer_takeover(struct px_node *n, const struct px_msg *m, struct px_ready *out);
bool px_proposer_queued(const struct px_node *n, const struct px_value *v);
int px_proposer_client(struct px_node *n, const struct px_value *v, uint32_t hops,
                       struct px_ready *out);
void px_proposer_tick(struct px_node *n, struct px_ready *out);
void px_proposer_peer_down(struct px_node *n, uint16_t peer, struct px_ready *out);
void px_proposer_step_down(struct px_node *n, struct px_ready *out);
void px_proposer_pump(struct px_node *n, struct px_ready *out);
void px_proposer_flush(struct px_node *n, struct px_ready *out);
void px_proposer_reset_timer(struct px_node *n, bool leader_lost);

/* px_learner.c */
void px_learner_accept_seen(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_decide(struct px_node *n, px_ballot_t b, px_inst_t hi, uint16_t from,
                       struct px_ready *out);
void px_learner_decided(struct px_node *n, px_inst_t i, const struct px_value *v);
void px_learner_apply(struct px_node *n, struct px_ready *out);
void px_learner_catchup_req(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_catchup_entry(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_snapshot(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_snapshot_part(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_heartbeat(struct px_node *n, const struct px_msg *m, struct px_ready *out);
void px_learner_tick(struct px_node *n, struct px_ready *out);

#endif
