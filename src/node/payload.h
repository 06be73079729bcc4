/* payload.h: the payload plane -- how a command longer than the 8 bytes of a px_value moves
 * between nodes and is kept by each (common/cmd.h). The core never sees it: it carries the value
 * (request identity, first 8 bytes, PX_VALUE_PAYLOAD set), and the node driver makes sure that
 * wherever such a value arrives, the command's bytes arrived first.
 *
 * On the wire: a command travels as a DATA stream of px_msg slots on the same link (the same
 * destination: a node, the broadcast, the client) as the message that carries its value, and
 * just before it. The stream is the command's bytes followed by their CRC-32C (4 bytes, little
 * endian); each DATA message carries PAYLOAD_CHUNK_BYTES of it:
 *   ballot word   the command's key (cmd_key: request identity)
 *   instance word (offset in the stream << 32) | command length
 *   u             up to PAYLOAD_CHUNK_BYTES bytes of the stream
 * A receiver assembles one stream per (sender, link) at a time -- a sender finishes a stream
 * before anything else goes on that link, and a link keeps order -- and keeps a command only
 * when every chunk arrived in order and the CRC matches. Anything else (a chunk lost to a
 * detached broadcast consumer, a sender killed mid-stream, damage) drops the partial stream
 * whole: the message that follows finds no bytes and is dropped (payload_rx_admit), and the
 * protocol recovers it as a lost message (the leader resends, the learner asks again, the
 * client resubmits). So a command is never delivered in part.
 *
 * Once per link: a sender streams a command to a destination once (payload_sent_*: the last
 * PAYLOAD_SENT_MAX keys per destination); a retransmitted ACCEPT, a second forward go without
 * their bytes. A receiver that drops a message for a missing command answers its sender with a
 * WANT (a DATA message flagged PAYLOAD_FLAG_WANT naming the key), and the sender pushes the
 * stream to that receiver alone (PAYLOAD_FLAG_PUSH: a stream with no message after it). A peer
 * that goes down is forgotten (what it held is gone with it).
 *
 * The table: the commands a node holds, by key, each with the highest instance it was
 * recorded at (payload_note). Bounded by PAYLOAD_ENTRIES_MAX entries and a byte budget; a
 * command stays while a message waiting to be sent needs it (pins), while its instance is
 * above the node's truncation point, or while the owner's `keep` hook says it still needs it
 * (the driver: its request waits in the core's queue -- a resubmission of a request recorded
 * long ago, which the core may propose at a new instance, whose record must carry the bytes).
 * When full, commands never recorded at an instance go,
 * oldest first; when nothing can go, a new command is refused (counted) and its message is
 * dropped like a lost one.
 *
 * Context: one plane per driver, used by its thread only. */
#ifndef PX_PAYLOAD_H
#define PX_PAYLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cmd.h"
#include "paxos/px.h"

/* Stream bytes per DATA message: the 40 bytes of the frame after the common words. */
#define PAYLOAD_CHUNK_BYTES (PX_MSG_BYTES - PX_MSG_OFF_A)
/* Commands one node holds at most: a log ring, a request queue and room to spare. */
#define PAYLOAD_ENTRIES_MAX (2u * PX_LOG_MAX + PX_QUEUE_MAX)
/* DATA flags: a WANT asks the receiver to stream the key to the sender; a PUSH is a driver's
 * own marker (a backlog item that is a stream alone), never sent. */
#define PAYLOAD_FLAG_WANT 0x01u
#define PAYLOAD_FLAG_PUSH 0x02u
/* Keys remembered as streamed, per destination. */
#define PAYLOAD_SENT_MAX 256u
/* WANTs a receiver queues between two flush points (more wait for the next retransmission). */
#define PAYLOAD_WANTS_MAX 64u

/* Default byte budget of a node's table. */
#define PAYLOAD_BUDGET_DEFAULT (512ull << 20)
/* Bytes of long commands a client keeps in flight at most (its window shrinks to fit). */
#define PAYLOAD_INFLIGHT_BYTES (128ull << 20)
/* Decided commands a node may hold beyond those in flight before its log is truncated: the
 * truncation step and as much again for learners' acknowledgements on their way. */
#define PAYLOAD_RETAINED_MAX (4u * 64u)

/* The window of a client whose commands are cmd_bytes long: within PAYLOAD_INFLIGHT_BYTES,
 * at least 1, at most `window`. Short commands keep `window`. */
static inline uint32_t payload_window_for(uint32_t cmd_bytes, uint32_t window)
{
    if (cmd_bytes <= CMD_INLINE_BYTES)
        return window;
    uint64_t w = PAYLOAD_INFLIGHT_BYTES / cmd_bytes;
    return w < 1 ? 1 : w < window ? (uint32_t)w : window;
}
/* A node's table budget for commands of cmd_bytes under a client window: what is in flight plus
 * what it holds until truncation, and never below PAYLOAD_BUDGET_DEFAULT. */
static inline uint64_t payload_budget_for(uint32_t cmd_bytes, uint32_t window)
{
    uint64_t need =
        ((uint64_t)payload_window_for(cmd_bytes, window) + PAYLOAD_RETAINED_MAX) * cmd_bytes;
    return need > PAYLOAD_BUDGET_DEFAULT ? need : PAYLOAD_BUDGET_DEFAULT;
}

struct payload_entry {
    uint64_t key; /* 0: free */
    uint8_t *bytes;
    uint32_t len;
    uint32_t crc;   /* CRC-32C of bytes */
    px_inst_t inst; /* highest instance it was recorded at, 0 = none yet */
    uint32_t pins;  /* messages waiting to be sent that need it */
    /* A request for it arrived (payload_touch) since it was last recorded at an instance: it
     * may be proposed again, so truncating its old instance does not free it. */
    bool pending;
    uint64_t born; /* insertion order */
};

/* One stream being assembled. */
struct payload_asm {
    uint64_t key;
    uint32_t len;  /* command length */
    uint32_t have; /* stream bytes received, in order */
    uint8_t *buf;  /* len + 4 bytes */
};

struct payload_stats {
    uint64_t streams_in;   /* commands received whole */
    uint64_t streams_torn; /* partial streams dropped (gap, restart, bad length) */
    uint64_t streams_bad;  /* whole streams whose CRC did not match */
    uint64_t refused;      /* commands the full table could not take */
    uint64_t
        conflicts;    /* a command for a key held with other bytes (a client bug): kept the first */
    uint64_t missing; /* messages dropped because their command was not here */
    uint64_t chunks_out; /* DATA messages sent */
    uint64_t wants_out;  /* WANTs sent (a message dropped for its missing command) */
    uint64_t pushes;     /* streams pushed to a peer that wanted them */
    uint64_t bytes;      /* bytes held now */
};

struct payload_sent {
    uint64_t keys[PAYLOAD_SENT_MAX];
    uint32_t next;
};

struct payload_plane {
    uint16_t self, nodes;
    struct payload_sent *sent; /* [destination slot]: nodes, the client (nodes), broadcast */
    struct px_msg wants[PAYLOAD_WANTS_MAX];
    uint32_t wants_len;
    uint32_t cmd_max;    /* longest command taken (<= CMD_BYTES_MAX) */
    uint64_t budget;     /* bytes the table may hold */
    px_inst_t truncated; /* the node's truncation point: commands at or below may go */
    uint64_t born;
    uint32_t cap; /* table slots (power of two) */
    uint32_t used;
    struct payload_entry *tab;
    struct payload_asm *rx; /* [sender * 2 + (broadcast ? 1 : 0)], senders 0..nodes */
    struct payload_stats stats;
    /* Optional (NULL after payload_init): true when the command of key must stay although its
     * instance was truncated. Asked only for such commands, at truncation and unpinning. */
    bool (*keep)(void *ctx, uint64_t key);
    void *keep_ctx;
};

/* cmd_max: longest command accepted (1..CMD_BYTES_MAX), budget: bytes held at most (>= cmd_max).
 * 0 or -ENOMEM. */
int payload_init(struct payload_plane *p, uint16_t self, uint16_t nodes, uint32_t cmd_max,
                 uint64_t budget);
void payload_fini(struct payload_plane *p);

/* The value a message carries that has its bytes beside it, or NULL (no value, or one that fits
 * 8 bytes). ACCEPT, PROMISE_ENTRY, CATCHUP_ENTRY and CLIENT carry commands. A SNAPSHOT of a
 * library pool carries its state machine's bytes (node/sm.h): u.snapshot.reserved_value with
 * PX_VALUE_PAYLOAD set and the key (CMD_KEY_SNAPSHOT | node << 32 | counter) in `increment`. */
const struct px_value *payload_value_of(const struct px_msg *m);
/* The key of the bytes a message needs beside it (payload_value_of), or 0: cmd_key of its value,
 * a SNAPSHOT's key. */
uint64_t payload_key_of(const struct px_msg *m);

/* The command of key, or NULL. */
const struct payload_entry *payload_get(const struct payload_plane *p, uint64_t key);
/* Adds a command (copied). 0; -EEXIST when the key is held (with the same bytes: nothing to do;
 * other bytes: counted in conflicts, the first kept); -ENOSPC when the table is full (counted
 * in refused); -EMSGSIZE over cmd_max; -ENOMEM. */
int payload_put(struct payload_plane *p, uint64_t key, const void *bytes, uint32_t len);
/* The command of key was recorded at instance (persisted with an ACCEPTED or DECIDED record). */
void payload_note(struct payload_plane *p, uint64_t key, px_inst_t inst);
/* A request for key arrived (a CLIENT, a local submission): it may be proposed again. */
void payload_touch(struct payload_plane *p, uint64_t key);
/* The node truncated its log up to inst: commands recorded at or below it, not pinned, not
 * pending a proposal and not kept (p->keep) go. */
void payload_truncate(struct payload_plane *p, px_inst_t inst);
/* Frees the bytes of key now when nothing pins them (a client done with a result, a snapshot
 * replaced by a newer one). */
void payload_drop(struct payload_plane *p, uint64_t key);
void payload_pin(struct payload_plane *p, uint64_t key);
void payload_unpin(struct payload_plane *p, uint64_t key);

/* Receiving. A DATA message: consumed here (true), never given to the core. */
bool payload_rx_data(struct payload_plane *p, const struct px_msg *m);
/* Any other message: true when the core may step it (no command, or its command is held);
 * false when its command is missing (counted; the caller drops the message). */
bool payload_rx_admit(struct payload_plane *p, const struct px_msg *m);

/* The destination slot of `to` in the sent sets. */
uint32_t payload_dest_slot(const struct payload_plane *p, uint16_t to);
/* True when key was streamed to `to` already (and not forgotten since). */
bool payload_sent_has(const struct payload_plane *p, uint16_t to, uint64_t key);
void payload_sent_add(struct payload_plane *p, uint16_t to, uint64_t key);
/* Forgets key for `to` (it wants it again). */
void payload_sent_forget(struct payload_plane *p, uint16_t to, uint64_t key);
/* A peer went down: it holds nothing it was sent, nor does the broadcast's audience. */
void payload_peer_down(struct payload_plane *p, uint16_t peer);
/* The WANT of key to `to` (filled into *out). */
void payload_want(const struct payload_plane *p, uint16_t to, uint64_t key, struct px_msg *out);

/* Sending: fills out[0..max) with the DATA messages of e's stream from *off on, from `from`
 * to `to`, advancing *off; returns how many. The stream is done when *off reaches
 * payload_stream_len(e->len). */
uint32_t payload_chunks(const struct payload_entry *e, uint16_t from, uint16_t to, uint32_t *off,
                        struct px_msg *out, uint32_t max);
static inline uint32_t payload_stream_len(uint32_t len)
{
    return len + 4u;
}

/* The deterministic filler of the main job's long commands (--command-bytes): the first 8 bytes
 * are the Fibonacci increment (little endian), the rest a pattern of the key and the offset, so
 * every learner can check every byte it applies. */
void payload_fib_fill(uint64_t key, uint64_t increment, uint8_t *out, uint32_t len);
/* True when bytes are what payload_fib_fill made for (key, increment). */
bool payload_fib_check(uint64_t key, uint64_t increment, const uint8_t *bytes, uint32_t len);

#endif
