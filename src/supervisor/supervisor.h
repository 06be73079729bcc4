/* supervisor.h: creates the segment, forks and restarts the nodes, drives the client, injects
 * chaos, verifies the end state and reports. */
#ifndef PX_SUPERVISOR_H
#define PX_SUPERVISOR_H

#include "cli/cli.h"

struct pxs_state_machine;

/* Runs the whole job: job is the state machine every learner runs (cli/fib_sm.h: its digest
 * is the value the verdict compares with F(R + 1)). Returns the process exit code (cli.h:
 * EXIT_*). */
int sup_run(const struct cli_config *cfg, const struct pxs_state_machine *job);

#endif
