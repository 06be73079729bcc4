/* fib_sm.h: the main job's state machine, distributed Fibonacci (DESIGN.md), written on the
 * public API (paxos-shm/paxos_shm.h) like any user's. Its state is one 64-bit value that starts
 * at F(1) = 1; a command is at least 8 bytes, the first 8 an increment (little endian) that
 * apply adds, modulo 2^64 (the client sends F(r - 1) in round r, so after R rounds the value is
 * F(R + 1)); the rest of a longer command is the client's pattern, which the node checks
 * byte for byte on its own. A command under 8 bytes is rejected with status 1 and changes
 * nothing. apply gives no result bytes. The digest is the value: the supervisor compares it
 * with the F(R + 1) it computes itself, so the check does not rest on this code. A snapshot is
 * the value, 8 bytes little endian. */
#ifndef PX_CLI_FIB_SM_H
#define PX_CLI_FIB_SM_H

#include "paxos-shm/paxos_shm.h"

/* The state's size: its snapshot's length. */
#define FIB_SM_STATE_BYTES 8u
/* Status of a command shorter than 8 bytes. */
#define FIB_SM_SHORT 1

/* The machine, its state in this process (each forked node has its own copy). */
const struct pxs_state_machine *fib_sm(void);

#endif
