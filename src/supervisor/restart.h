/* restart.h: when the supervisor restarts a node that died during the drive. Pure (no I/O, no
 * clock: the caller passes the times), so the rule is unit tested on its own.
 *
 * A restart forks the supervisor and the new incarnation loads its store: milliseconds of CPU.
 * On a machine with fewer cores than nodes that CPU is taken from the proposer campaigning to
 * replace a dead leader, and measured on 2 cores it doubled the time from a leader's SIGKILL to
 * the next decision (5 nodes, shm, window 1: p50 3.2 ms with restarts held back, 6.3 ms without,
 * in the same run). So the restart of a node that died leading waits until the client has seen a
 * decision after the death (the fail-over is over), for at most SUP_RESTART_HOLD_NS. It never
 * waits when the pool cannot decide without that node (fewer than a majority of the acceptors
 * up), and the death of a node that was not leading does not hold anything up. */
#ifndef SUPERVISOR_RESTART_H
#define SUPERVISOR_RESTART_H

#include <stdbool.h>
#include <stdint.h>

/* The longest a dead leader's restart waits for the fail-over: a fail-over takes a few ms when
 * the machine has a CPU to give, up to a few hundred under heavy load; past this bound the pool
 * is not left one node short any longer for it. */
#define SUP_RESTART_HOLD_NS (50ull * 1000 * 1000)

struct sup_restart_view {
    uint64_t now_ns;
    uint64_t died_ns;    /* when the supervisor learned of the death */
    bool died_leading;   /* the node was the leader the client knew, or said it led */
    uint64_t decided_ns; /* the client's latest decision, 0 = none yet */
    bool quorum_without; /* a majority of the acceptors is up without the node */
    bool drive_running;  /* the client drive is on (not the start, not the stop) */
};

/* True: leave the restart for a later look; false: restart now. */
static inline bool sup_restart_holds(const struct sup_restart_view *v)
{
    if (!v->drive_running || !v->died_leading || !v->quorum_without)
        return false;
    if (v->decided_ns > v->died_ns)
        return false; /* another leader decided: the fail-over is over */
    return v->now_ns - v->died_ns < SUP_RESTART_HOLD_NS;
}

#endif
