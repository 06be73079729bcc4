/* wire.c: the checks of frames from the network (wire.h). */
#include "net/wire.h"

#include <string.h>

#include "ipc/check.h"

static bool runs_on(const struct net_pool *p, uint32_t host, uint32_t id)
{
    return id < p->nodes && p->host_of[id] == host;
}

int net_frame_check(const struct net_pool *p, uint32_t self, uint32_t sender, const void *buf,
                    size_t len, struct net_hdr *hdr, const char **why)
{
    PX_ASSERT(self < p->hosts);
    PX_ASSERT(sender < p->hosts);
    if (len < sizeof(*hdr)) {
        *why = "shorter than a header";
        return -1;
    }
    memcpy(hdr, buf, sizeof(*hdr));
    if (hdr->magic != NET_MAGIC || hdr->version != NET_VERSION) {
        *why = "wrong magic or version";
        return -1;
    }
    if (hdr->host != sender || sender == self) {
        *why = "the header names another host than the authenticated one";
        return -1;
    }
    size_t body = len - sizeof(*hdr);
    if (hdr->kind == NET_KIND_MSGS) {
        if (hdr->count == 0 || hdr->count > NET_FRAME_MSGS_MAX ||
            body != (size_t)hdr->count * sizeof(struct px_msg)) {
            *why = "message count and size disagree";
            return -1;
        }
        return 0;
    }
    if (hdr->kind == NET_KIND_STATUS) {
        if (hdr->count > NET_NODES_MAX ||
            body != sizeof(struct net_status) + hdr->count * sizeof(struct net_node_status)) {
            *why = "status count and size disagree";
            return -1;
        }
        return 0;
    }
    *why = "unknown kind";
    return -1;
}

bool net_msg_check(const struct net_pool *p, uint32_t self, uint32_t sender, const struct px_msg *m,
                   const char **why)
{
    if (m->type == PX_MSG_NONE || m->type >= PX_MSG_TYPE_COUNT) {
        *why = "unknown message type";
        return false;
    }
    bool from_client = m->from == p->nodes && sender == 0;
    if (!runs_on(p, sender, m->from) && !from_client) {
        *why = "a sender the sending host does not run";
        return false;
    }
    bool to_ok = runs_on(p, self, m->to) || (m->to == p->nodes && self == 0) ||
                 (m->to == PX_TO_ALL && !from_client);
    if (!to_ok) {
        *why = "a receiver this host does not run";
        return false;
    }
    if (!ipc_check_ok(m, (uint32_t)offsetof(struct px_msg, check))) {
        *why = "its check does not match its content";
        return false;
    }
    return true;
}

bool net_status_check(const struct net_pool *p, uint32_t sender,
                      const struct net_node_status *nodes, uint32_t count, const char **why)
{
    for (uint32_t i = 0; i < count; i++) {
        if (!runs_on(p, sender, nodes[i].id)) {
            *why = "status of a node the sending host does not run";
            return false;
        }
    }
    return true;
}
