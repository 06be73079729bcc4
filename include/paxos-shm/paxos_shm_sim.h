/* paxos_shm_sim.h: test your own state machine (struct pxs_state_machine, paxos_shm.h) in the
 * deterministic simulator, the way the library tests itself.
 *
 * Build your state machine as a shared object that exports pxs_sim_state_machine (and
 * optionally pxs_sim_state_machine_free), then run the simulator on it:
 *
 *   cc -shared -fPIC -o my_sm.so my_sm.c $(pkg-config --cflags paxos-shm)
 *   paxos-shm-sim --sm-lib ./my_sm.so --seeds 1000
 *
 * Each seed simulates a pool (3..7 nodes, drawn roles) on virtual time, with dropped,
 * duplicated and reordered messages, partitions, crashes at any point and restarts. Every
 * learner runs its own instance of your state machine through the same node code a pool runs:
 * commands applied in log order, snapshots at log truncation and for learners that lag, restore
 * and replay of the log at every restart. At the end every learner must stand at its core's log
 * index, and all of them must agree on the commands applied and on your digest. A failing seed
 * prints `VIOLATION <kind> ...` and a `replay:` line that runs that seed again, exactly.
 *
 * What it catches: an apply that is not deterministic (depends on anything but the state and
 * the command: a clock, an address, a counter of the instance or of the process), a snapshot
 * that misses part of the state or a restore that does not rebuild the same state (a restarted
 * or caught-up learner then differs from the others), a callback that fails.
 *
 * The commands are the simulator's own bytes (0..8 bytes, or longer ones with --cmd-sizes),
 * not yours: apply must take any bytes (answer an unknown command with a status, never a
 * crash). The simulator runs every node in ONE process, on one thread, unlike a pool, where
 * each node is a process of its own: your state must live in the instance's ctx, never in
 * static or global variables, or the nodes would share it.
 *
 * The shared object only needs this header and paxos_shm.h (it must not call the library:
 * the simulator does not load libpaxos-shm). PXS_API exports both functions even from an
 * object built with -fvisibility=hidden. */
#ifndef PAXOS_SHM_SIM_H
#define PAXOS_SHM_SIM_H

#include <stdint.h>

#include "paxos_shm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Required export. Fills *out with a fresh instance of your state machine for node `node`
 * (0 .. nodes - 1) and returns 0, or returns a negative errno (the simulator stops: exit 2).
 * Called once per node incarnation: at the node's start and again at each of its restarts,
 * while the other nodes' instances are alive in the same process, so every call returns its
 * own ctx, with an empty state (the simulator then restores a snapshot and replays the log
 * into it, as a restarted node process would). out->size is sizeof(struct pxs_state_machine);
 * apply, snapshot and restore are required, start and digest optional as in paxos_shm.h.
 * Give a digest: the end check compares it across learners (without one the simulator
 * compares the learners' snapshot bytes instead, so equal states must then write equal
 * bytes). The instance lives until the node crashes or the seed ends, then
 * pxs_sim_state_machine_free is called with it. */
PXS_API int pxs_sim_state_machine(uint32_t node, struct pxs_state_machine *out);

/* Optional export. Frees an instance pxs_sim_state_machine made for `node` (sm is what it
 * filled in): called once per instance, when its node crashes and when the seed ends. Without
 * it an instance is simply dropped (its memory leaks for the rest of the run). */
PXS_API void pxs_sim_state_machine_free(uint32_t node, struct pxs_state_machine *sm);

#ifdef __cplusplus
}
#endif
#endif
