/* node.h: one node process's loop. Runs in a forked child of the supervisor. */
#ifndef PX_NODE_H
#define PX_NODE_H

#include <stdint.h>

#include "cli.h"
#include "paxos/px.h"

struct ipc_segment;
struct sock_mesh;

struct node_args {
    struct ipc_segment *seg;
    struct sock_mesh *mesh; /* --transport socket: the socketpairs; NULL for the rings */
    const struct cli_config *cfg;
    const char *data_dir; /* sqlite store directory (NULL for the shm store) */
    uint16_t id;
    uint32_t incarnation; /* 1 for the first start of this id, +1 per restart */
};

/* Bytes of a node's user area in the segment: struct pool_node_shared + the shm store. */
uint64_t node_user_bytes(const struct cli_config *cfg);
/* Fills the core configuration of node `id` from the command line. */
void node_px_config(const struct cli_config *cfg, uint16_t id, struct px_config *out);

/* Runs node `id` until the supervisor sets stop. Returns the process exit code: 0 after
 * publishing its final state, EXIT_RUNTIME on a storage or setup failure (one line on stderr). */
int node_run(const struct node_args *a);

#endif
