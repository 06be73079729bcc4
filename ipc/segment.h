/* segment.h: the POSIX shared-memory segment that holds every ring, broadcast ring, control
 * block and per-endpoint user area of one supervisor's pool.
 *
 * Layout (all offsets multiples of IPC_LINE_BYTES, computed once from struct ipc_layout and
 * stored in the header so that an attacher can check them):
 *   header | ctl[endpoints] | ring[endpoints * (endpoints - 1)] | bcast[bcast_producers] |
 *   user[endpoints]
 * Rings: one per directed pair (from, to), from != to. Broadcast ring p: producer endpoint p,
 * consumers the other endpoints < bcast_producers, each reading with cursor index = its own
 * endpoint id (see bcast.h).
 *
 * Lifecycle: the supervisor creates the segment (O_EXCL) before fork; children inherit the
 * mapping (same address). The magic is written last, so an attacher never sees a half-built
 * segment. The supervisor unlinks it on every exit path; ipc_segment_clean_stale removes the
 * ones left by supervisors that died.
 */
#ifndef IPC_SEGMENT_H
#define IPC_SEGMENT_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/bcast.h"
#include "ipc/doorbell.h"
#include "ipc/life.h"
#include "ipc/ring.h"

/* 64 nodes (PX_NODES_MAX) + the supervisor. */
#define IPC_ENDPOINTS_MAX 65
/* "PXSHMSEG" */
#define IPC_SEGMENT_MAGIC UINT64_C(0x4745534d48535850)
/* Bump whenever the layout of anything in the segment changes. */
#define IPC_SEGMENT_VERSION 2u
/* Per-endpoint user area bound: the shm store backend's records, far below this. */
#define IPC_USER_BYTES_MAX (UINT64_C(1) << 30)
/* Whole-segment bound (16 GiB): larger means a mistaken ring configuration; the memory is
 * reserved up front (posix_fallocate) so it must fit in /dev/shm anyway. */
#define IPC_SEGMENT_BYTES_MAX (UINT64_C(1) << 34)
/* "/paxos-shm-<pid>" plus room for test suffixes. */
#define IPC_SEGMENT_NAME_MAX 64
/* Where Linux keeps POSIX shared memory objects (for the stale-segment scan). */
#define IPC_SHM_DIR "/dev/shm"

struct ipc_layout {
    uint32_t endpoints;       /* processes attached: nodes + supervisor, 2..IPC_ENDPOINTS_MAX */
    uint32_t ring_slots;      /* slots per point-to-point ring, power of two, 1..65536 */
    uint32_t bcast_slots;     /* slots per broadcast ring, power of two, 1..65536; 0 = none */
    uint32_t bcast_producers; /* endpoints 0..bcast_producers-1 own a broadcast ring whose
                                 consumers are the other endpoints < bcast_producers;
                                 0 if bcast_slots is 0, else at most IPC_BCAST_CURSORS_MAX */
    uint64_t user_bytes;      /* per-endpoint opaque area, multiple of 64, may be 0 */
};

/* Per-endpoint control block. The doorbell has its own line; the rest is one line written
 * by the supervisor (pid, incarnation, alive) and the endpoint itself (heartbeat, counters).
 * Plain shared fields: read and written with CMM_LOAD_SHARED / CMM_STORE_SHARED (single
 * writer each) or uatomic. */
struct ipc_ctl {
    struct ipc_doorbell bell;
    alignas(IPC_LINE_BYTES) int32_t pid; /* supervisor: the endpoint's process, 0 = none */
    uint32_t incarnation;                /* supervisor: bumped on every (re)start */
    uint32_t alive;                      /* supervisor: 1 running, 0 down */
    uint32_t reserved0;
    uint64_t heartbeat;   /* endpoint: bumped every loop iteration (hang detection) */
    uint64_t msgs_sent;   /* endpoint: messages pushed or published */
    uint64_t ring_full;   /* endpoint: pushes that found a ring full */
    uint64_t drops;       /* endpoint: messages dropped (peer down or detached) */
    uint64_t lagged;      /* endpoint: lagged broadcast reads */
    struct ipc_life life; /* endpoint holds it while it runs; its death releases it (life.h) */
    uint64_t reserved1[(9 * 8 - sizeof(struct ipc_life)) / 8];
};

_Static_assert(sizeof(struct ipc_ctl) == 2 * IPC_LINE_BYTES, "ctl is two lines");
_Static_assert(offsetof(struct ipc_ctl, pid) == IPC_LINE_BYTES, "doorbell on its own line");

/* The first bytes of the segment. Exposed for tests and diagnostics only. */
struct ipc_segment_header {
    uint64_t magic;   /* IPC_SEGMENT_MAGIC, stored last at creation */
    uint32_t version; /* IPC_SEGMENT_VERSION */
    uint32_t header_bytes;
    uint32_t slot_bytes; /* IPC_SLOT_BYTES of the creator */
    uint32_t line_bytes; /* IPC_LINE_BYTES of the creator */
    uint64_t total_bytes;
    struct ipc_layout layout;
    int32_t owner_pid; /* the supervisor that created it */
    uint32_t reserved0;
    uint64_t ctl_off, ring_off, ring_stride, bcast_off, bcast_stride, user_off, user_stride;
};

_Static_assert(offsetof(struct ipc_segment_header, magic) == 0, "magic first");
_Static_assert(sizeof(struct ipc_segment_header) <= IPC_LINE_BYTES * 2, "header fits");

struct ipc_segment; /* process-local handle: base address, layout, offsets */

/* Supervisor, before fork: creates, sizes, reserves, maps and initialises the segment `name`
 * (must not exist). 0 or a negative errno; on failure err holds one line and nothing is left
 * in /dev/shm. */
int ipc_segment_create(const char *name, const struct ipc_layout *l, struct ipc_segment **out,
                       char *err, size_t err_len);
/* Maps an existing segment; refuses (-EPROTO, -EINVAL...) with one line in err when the magic,
 * version, sizes or offsets do not match this build. */
int ipc_segment_attach(const char *name, struct ipc_segment **out, char *err, size_t err_len);
/* shm_unlink; 0 also when it does not exist, else a negative errno. */
int ipc_segment_unlink(const char *name);
/* munmap and free the handle (the segment itself stays until unlinked). NULL is a no-op. */
void ipc_segment_close(struct ipc_segment *s);
/* "/paxos-shm-<owner>": the name of the supervisor owner's segment. */
void ipc_segment_name(char *buf, size_t len, pid_t owner);
/* Unlinks every IPC_SHM_DIR/paxos-shm-<pid> whose pid is dead (kill(pid, 0) fails with
 * ESRCH); *removed = how many. 0 or a negative errno (the directory could not be read). */
int ipc_segment_clean_stale(unsigned *removed);

const struct ipc_layout *ipc_segment_layout(const struct ipc_segment *s);
size_t ipc_segment_bytes(const struct ipc_segment *s);
void *ipc_segment_base(const struct ipc_segment *s);
/* The ring from -> to (from != to, both < endpoints). */
struct ipc_ring *ipc_segment_ring(struct ipc_segment *s, uint32_t from, uint32_t to);
/* The broadcast ring of producer endpoint `producer` (< bcast_producers). */
struct ipc_bcast *ipc_segment_bcast(struct ipc_segment *s, uint32_t producer);
struct ipc_ctl *ipc_segment_ctl(struct ipc_segment *s, uint32_t endpoint);
/* The endpoint's user area (user_bytes long, IPC_LINE_BYTES-aligned), NULL if user_bytes 0. */
void *ipc_segment_user(struct ipc_segment *s, uint32_t endpoint);

#endif
