/* transport_check.c: sealing and checking messages for both transports (see transport.h). */
#include "node/transport.h"

#include <inttypes.h>
#include <stdio.h>

#include "ipc/check.h"
#include "ipc/segment.h"

#define CHECK_OFF ((uint32_t)offsetof(struct px_msg, check))

_Static_assert(sizeof(struct px_msg) == IPC_SLOT_BYTES, "a message is one checked slot");
_Static_assert(IPC_ENDPOINTS_MAX <= 128, "bad_named holds one bit per endpoint");

void transport_seal(struct px_msg *m)
{
    ipc_check_seal(m, CHECK_OFF);
}

static void endpoint_name(const struct transport *t, uint16_t e, char *buf, size_t len)
{
    if (e == t->nodes)
        snprintf(buf, len, "the client");
    else
        snprintf(buf, len, "node %u", (unsigned)e);
}

/* One line per sender and process: a damaged link would otherwise print once per message. */
static void name_sender_once(struct transport *t, uint16_t sender, const char *why)
{
    uint64_t bit = UINT64_C(1) << (sender % 64);
    if (t->bad_named[sender / 64] & bit)
        return;
    t->bad_named[sender / 64] |= bit;
    char me[32], from[32];
    if (t->self == t->nodes)
        snprintf(me, sizeof(me), "client");
    else
        endpoint_name(t, t->self, me, sizeof(me));
    endpoint_name(t, sender, from, sizeof(from));
    fprintf(stderr,
            "paxos-shm: %s: dropped a damaged message from %s (%s); later ones are only "
            "counted in bad_messages\n",
            me, from, why);
}

static void bad_message(struct transport *t, uint16_t sender, const struct px_msg *m)
{
    char why[64];
    if (m->from != sender)
        snprintf(why, sizeof(why), "it names node %u as its sender", (unsigned)m->from);
    else
        snprintf(why, sizeof(why), "check %04x, content %04x", (unsigned)m->check,
                 (unsigned)ipc_check_compute(m, CHECK_OFF));
    t->stats.bad_messages++;
    name_sender_once(t, sender, why);
}

void transport_bad_cut(struct transport *t, uint16_t sender, uint64_t n, size_t bytes)
{
    PX_ASSERT(sender < IPC_ENDPOINTS_MAX);
    PX_ASSERT(n > 0);
    char why[64];
    snprintf(why, sizeof(why), "a packet of %zu bytes", bytes);
    t->stats.bad_messages += n;
    name_sender_once(t, sender, why);
}

uint32_t transport_check_in(struct transport *t, uint16_t sender, struct px_msg *msgs, uint32_t n)
{
    PX_ASSERT(sender < IPC_ENDPOINTS_MAX);
    PX_ASSERT(sender != t->self);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (msgs[i].from == sender && ipc_check_ok(&msgs[i], CHECK_OFF)) {
            if (kept != i)
                msgs[kept] = msgs[i];
            kept++;
            continue;
        }
        bad_message(t, sender, &msgs[i]);
    }
    PX_ASSERT(kept <= n);
    return kept;
}
