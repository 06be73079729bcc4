/* drive.c: the client drive. First the rounds an earlier run left in doubt (record.c) are
 * resubmitted with their own identity until each is decided, then the new rounds: submitted
 * to the node that leads (a non-leader forwards), never beyond the durable high-water mark,
 * replies read, overdue requests resubmitted, chaos injected at its moments. At the end it
 * waits until every learner has applied the last decided instance. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urcu/system.h>

#include "common/cmd.h"
#include "common/pool.h"
#include "common/util.h"
#include "ipc/check.h"
#include "node/node.h"
#include "node/payload.h"
#include "node/transport.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

/* After the last reply, learners get this long to apply the last decided instance. */
#define SUP_CONVERGE_NS (20ull * 1000 * 1000 * 1000)
/* Replies read per pump: the transport's batch; more wait for the next pump. */
#define SUP_BATCH_MAX 1024
/* The live progress line on a terminal is redrawn at most this often (4 per second). */
#define SUP_PROGRESS_NS (250ull * 1000 * 1000)
/* The client sleeps at most this long when no reply came: short against a round's latency at
 * a full window, long enough that an idle client makes no more than 1000 wake-ups per second;
 * a reply rings the supervisor's doorbell and ends the wait at once. */
#define SUP_REPLY_WAIT_NS (1000ull * 1000)
/* Overdue requests resubmitted per check (the rest on the next check, CLIENT_RESUBMIT_NS/4
 * later): bounds the burst a leader change causes. */
#define SUP_RESUBMIT_MAX 64

bool sup_should_stop(struct sup *s)
{
    sup_take_early_deaths(s);
    if (sup_take_sigchld())
        sup_reap(s);
    sup_watch_hangs(s);
    return sup_signal() || s->fatal;
}

/* Where requests go: the node that says it leads, else the last target if it is up, else the
 * first proposer that is up (a non-leader forwards to the leader it knows). */
static void update_target(struct sup *s)
{
    uint16_t leader = sup_leader(s);
    if (leader != PX_NODE_NONE) {
        s->drive.target = leader;
        return;
    }
    if (sup_alive(s, s->drive.target) && sup_has_role(s->cfg, s->drive.target, PX_ROLE_PROPOSER))
        return;
    for (uint16_t i = 0; i < s->cfg->proposers; i++) {
        if (sup_alive(s, i)) {
            s->drive.target = i;
            return;
        }
    }
}

/* The proposer the nodes elect when `dead` dies: the first live proposer by id (the core's
 * rank order, px_proposer_peer_down). PX_NODE_NONE when none is up. */
static uint16_t successor_of(const struct sup *s, uint16_t dead)
{
    for (uint16_t i = 0; i < s->cfg->proposers; i++)
        if (i != dead && sup_alive(s, i) && !s->members.procs[i].killing)
            return i;
    return PX_NODE_NONE;
}

/* The leader's queue and its in-flight proposals die with it. As soon as the client learns
 * of the death (SIGCHLD), every outstanding request goes to the proposer that campaigns now:
 * it holds them while it runs phase 1 and proposes them the moment it wins, with no wait for
 * CLIENT_RESUBMIT_NS nor for the new leader to show itself. A request the old leader had
 * decided is answered "applied earlier", so the resend is harmless. A leader that changed
 * while alive (rotation) handed its queue over: nothing is resent. */
static void watch_leader(struct sup *s)
{
    struct sup_drive *d = &s->drive;
    if (d->leader != PX_NODE_NONE &&
        (s->members.procs[d->leader].pid != d->leader_pid || !sup_alive(s, d->leader))) {
        uint16_t next = successor_of(s, d->leader);
        client_expire_all(d->client);
        d->resend = true;
        d->leader = PX_NODE_NONE;
        d->handed_to = next;
        if (next != PX_NODE_NONE)
            d->target = next;
        return;
    }
    uint16_t l = sup_leader(s);
    if (l == PX_NODE_NONE)
        return;
    if (d->leader == PX_NODE_NONE && d->handed_to != PX_NODE_NONE && l != d->handed_to) {
        /* Another proposer won than the one the requests went to (it was behind and asked
         * the next one to campaign, or it lost the race): that one holds them until it hears
         * the winner's first message; the winner gets them now. */
        client_expire_all(d->client);
        d->resend = true;
    }
    d->handed_to = PX_NODE_NONE;
    d->leader = l;
    d->leader_pid = s->members.procs[l].pid;
}

void sup_drive_track(struct sup *s)
{
    update_target(s);
    watch_leader(s);
}

uint32_t sup_client_window(const struct cli_config *c)
{
    if (c->store == CLI_STORE_SHM) /* what the nodes' command areas hold */
        return node_shm_window(c->command_bytes, c->window, (uint16_t)c->nodes);
    return payload_window_for(c->command_bytes, c->window);
}

/* Long commands take their time through the rings: a request waits for the whole window's bytes
 * ahead of it (at SUP_STREAM_NS_PER_BYTE, a pessimistic rate) before it counts as lost. */
#define SUP_STREAM_NS_PER_BYTE 200ull
static void set_resubmit(struct sup *s)
{
    const struct cli_config *c = s->cfg;
    if (c->command_bytes <= CMD_INLINE_BYTES)
        return;
    s->drive.client->resubmit_ns = CLIENT_RESUBMIT_NS + (uint64_t)sup_client_window(c) *
                                                            c->command_bytes *
                                                            SUP_STREAM_NS_PER_BYTE;
    /* The rounds a crash leaves in doubt are resubmitted whole by the next run: reserve about
     * PAYLOAD_INFLIGHT_BYTES of them, not 4096 commands of up to 64 MiB. */
    uint64_t chunk = PAYLOAD_INFLIGHT_BYTES / c->command_bytes;
    if (chunk < sup_client_window(c))
        chunk = sup_client_window(c);
    if (chunk < CLIENT_HWM_CHUNK)
        s->drive.client->hwm_chunk = (uint32_t)chunk;
}

/* Goes on with the command being streamed: its DATA messages, then its CLIENT message. True when
 * it is all handed over (or there is none); false when an outbox is full (the next pass goes
 * on from there). */
static bool stream_on(struct sup *s)
{
    struct sup_drive *d = &s->drive;
    if (!d->stream.active)
        return true;
    while (d->stream.off < payload_stream_len(d->stream.e.len)) {
        struct px_msg c;
        uint32_t off = d->stream.off;
        (void)payload_chunks(&d->stream.e, d->stream.m.from, d->stream.m.to, &off, &c, 1);
        if (transport_send(s->env.t, &c) != 0)
            return false;
        d->stream.off = off;
    }
    if (transport_send(s->env.t, &d->stream.m) != 0)
        return false;
    d->stream.active = false;
    return true;
}

static bool submit(struct sup *s, const struct px_value *v)
{
    struct px_msg m;
    memset(&m, 0, sizeof(m));
    m.type = PX_MSG_CLIENT;
    m.from = (uint16_t)s->cfg->nodes;
    m.to = s->drive.target;
    m.u.client.value = *v;
    uint32_t len = s->cfg->command_bytes;
    if (len <= CMD_INLINE_BYTES)
        return transport_send(s->env.t, &m) == 0;
    /* A longer command: its bytes go first, on the same link (payload.h). */
    struct sup_drive *d = &s->drive;
    if (!stream_on(s))
        return false;
    if (d->stream.buf == NULL && (d->stream.buf = malloc(len)) == NULL)
        return false; /* resubmitted on timeout */
    m.u.client.value.client_id |= PX_VALUE_PAYLOAD;
    uint64_t key = cmd_key(&m.u.client.value);
    payload_fib_fill(key, v->word, d->stream.buf, len);
    d->stream.e = (struct payload_entry){
        .key = key, .bytes = d->stream.buf, .len = len, .crc = ipc_crc32c(0, d->stream.buf, len)};
    d->stream.off = 0;
    d->stream.m = m;
    d->stream.active = true;
    return stream_on(s);
}

static void progress(struct sup *s, uint64_t start_ns, uint64_t now)
{
    if (s->cfg->quiet || !isatty(STDERR_FILENO))
        return;
    const struct client *c = s->drive.client;
    double secs = (double)(now - start_ns) / 1e9;
    fprintf(stderr, "\r\033[Kpaxos-shm: %s%" PRIu64 "/%" PRIu64 " rounds, %.0f rounds/s, leader %d",
            s->record.resolving ? "in doubt: " : "", c->done, c->rounds,
            secs > 0 ? (double)c->done / secs : 0.0, s->drive.target);
}

static void progress_end(struct sup *s)
{
    if (s->cfg->quiet || !isatty(STDERR_FILENO))
        return;
    fprintf(stderr, "\r\033[K");
}

/* Pushes what is queued, reads the replies, and sleeps up to 1 ms when there were none. */
static void pump(struct sup *s)
{
    static struct px_msg in[SUP_BATCH_MAX];
    transport_flush(s->env.t);
    uint32_t n = transport_recv(s->env.t, in, SUP_BATCH_MAX);
    uint64_t now = util_now_ns();
    for (uint32_t i = 0; i < n; i++)
        if (in[i].type == PX_MSG_CLIENT_REPLY &&
            client_decided(s->drive.client, &in[i].u.client_reply.value, in[i].instance, now)) {
            s->drive.decided_ns = now;
            sup_failover_decided(s, now, in[i].from, s->drive.client->last_latency_ns);
        }
    if (n == 0)
        transport_wait(s->env.t, SUP_REPLY_WAIT_NS);
}

static void submit_due(struct sup *s, uint64_t now, uint64_t *last_overdue)
{
    struct px_value v;
    uint64_t hwm = client_hwm_wanted(s->drive.client);
    if (hwm != 0 && sup_record_hwm(s, hwm) != 0)
        return; /* s->fatal is set: the run ends */
    if (!stream_on(s))
        return; /* a long command is still going out: nothing may pass it */
    while (client_next(s->drive.client, now, &v))
        if (!submit(s, &v))
            break; /* outbox full: resubmitted on timeout */
    /* Long commands go one stream at a time: an overdue request counts as resubmitted only
     * when its stream begins, so they are taken one per pass (the others stay due). */
    bool streams = s->cfg->command_bytes > CMD_INLINE_BYTES;
    if (streams && s->drive.stream.active)
        return;
    if (s->drive.resend || now - *last_overdue > CLIENT_RESUBMIT_NS / 4) {
        struct px_value again[SUP_RESUBMIT_MAX];
        uint32_t max = streams ? 1u : SUP_RESUBMIT_MAX;
        uint32_t k = client_overdue(s->drive.client, now, again, max);
        for (uint32_t i = 0; i < k; i++)
            (void)submit(s, &again[i]);
        *last_overdue = now;
        s->drive.resend = k == max; /* more expired ones: the next pass sends them */
    }
}

/* The deadline of --timeout passed: one line, exit 3. */
static bool timed_out(struct sup *s, uint64_t now)
{
    if (s->drive.deadline_ns == 0 || now <= s->drive.deadline_ns)
        return false;
    fprintf(stderr,
            "paxos-shm: timed out after %u s with %" PRIu64 " of %" PRIu64 " rounds%s decided\n",
            s->cfg->timeout_s, s->drive.client->done, s->drive.client->rounds,
            s->record.resolving ? " in doubt" : "");
    return true;
}

/* True while chaos kills are owed after the last round was decided (SUP_CHAOS_TAIL_NS). Not
 * when no kill can ever happen (sup_chaos_cannot_kill, said at the start). */
static bool chaos_owed(struct sup *s, uint64_t now)
{
    const struct cli_config *c = s->cfg;
    if (s->record.resolving || s->chaos.next >= c->chaos_kills)
        return false;
    if (sup_chaos_cannot_kill(c))
        return false;
    if (s->drive.chaos_tail_ns == 0)
        s->drive.chaos_tail_ns = now + SUP_CHAOS_TAIL_NS;
    return now < s->drive.chaos_tail_ns;
}

/* Drives the client until every one of its rounds is decided (and the chaos kills still owed
 * then happened). Returns 0, or the exit code that ended the run (-1: a signal). */
static int drive_client(struct sup *s, uint64_t start_ns)
{
    uint64_t last_progress = 0, last_overdue = start_ns;
    int rc = 0;
    s->members.defer_restarts = true;
    for (;;) {
        uint64_t now = util_now_ns();
        bool finished = client_finished(s->drive.client);
        if (finished && s->drive.finished_ns == 0)
            s->drive.finished_ns = now; /* rounds/s ends here, not after the chaos tail */
        if (finished && !chaos_owed(s, now))
            break;
        if (sup_should_stop(s)) {
            rc = s->fatal ? s->fatal : -1;
            break;
        }
        if (timed_out(s, now)) {
            rc = EXIT_RUNTIME;
            break;
        }
        sup_drive_track(s);
        if (!s->record.resolving) {
            sup_chaos_step(s); /* its moments count new rounds */
            if (!finished)
                sup_failover_step(s, now);
        }
        submit_due(s, now, &last_overdue);
        sup_restart_due(s); /* after the requests of a dead leader went to its successor */
        if (now - last_progress > SUP_PROGRESS_NS) {
            progress(s, start_ns, now);
            last_progress = now;
        }
        pump(s);
    }
    s->members.defer_restarts = false;
    sup_restart_due(s);
    progress_end(s);
    if (s->drive.client->max_instance > s->drive.max_instance)
        s->drive.max_instance = s->drive.client->max_instance;
    return rc;
}

/* Resubmits every round in doubt (same client id, seq and increment) until it is decided: a
 * round decided before is answered as applied, one that never was is decided now. */
static int resolve_in_doubt(struct sup *s)
{
    const struct store_run *run = &s->record.run;
    const struct client_resume from = {.base = run->base, .in_doubt = run->in_doubt};
    if (!client_resolve_init(s->drive.client, &from, sup_client_window(s->cfg)))
        return 0;
    set_resubmit(s);
    s->record.resolving = true;
    int rc = drive_client(s, util_now_ns());
    if (rc == 0 && sup_record_resolved(s) != 0)
        rc = s->fatal;
    if (rc == 0)
        s->record.resolving = false; /* else the record keeps what the client resolved */
    return rc;
}

int sup_drive_run(struct sup *s)
{
    uint64_t start_ns = util_now_ns();
    s->drive.deadline_ns = s->cfg->timeout_s ? start_ns + s->cfg->timeout_s * 1000000000ull : 0;
    int rc = resolve_in_doubt(s);
    if (rc != 0)
        return rc;
    client_init(s->drive.client, s->cfg->rounds, sup_client_window(s->cfg), s->record.run.base);
    set_resubmit(s);
    start_ns = util_now_ns();
    sup_failover_start(s, start_ns);
    s->drive.finished_ns = 0;
    rc = drive_client(s, start_ns);
    sup_failover_finish(s);
    uint64_t end_ns = s->drive.finished_ns ? s->drive.finished_ns : util_now_ns();
    s->drive.seconds = (double)(end_ns - start_ns) / 1e9;
    return rc;
}

bool sup_converge(struct sup *s)
{
    uint64_t deadline = util_now_ns() + SUP_CONVERGE_NS;
    while (util_now_ns() < deadline) {
        if (sup_should_stop(s))
            return false;
        uint64_t lo = UINT64_MAX, hi = 0;
        bool all_up = true;
        for (uint16_t i = 0; i < s->cfg->nodes; i++) {
            if (!sup_has_role(s->cfg, i, PX_ROLE_LEARNER))
                continue;
            /* A learner hung for SUP_LEFT_OUT_NS is left out (verdict "hung"); one hung for
             * less may resume (or only have been slow): it is waited for. */
            s->members.procs[i].left_out = sup_hung_ns(s, i, util_now_ns()) > SUP_LEFT_OUT_NS;
            if (s->members.procs[i].left_out)
                continue;
            if (!sup_settled(s, i))
                all_up = false;
            uint64_t a = CMM_LOAD_SHARED(sup_node_shared(s, i)->applied);
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
        }
        if (all_up && lo == hi && lo >= s->drive.max_instance)
            return true;
        pump(s);
    }
    if (!sup_signal() && !s->fatal)
        fprintf(stderr, "paxos-shm: learners did not converge within %llu s\n",
                (unsigned long long)(SUP_CONVERGE_NS / 1000000000ull));
    return false;
}
