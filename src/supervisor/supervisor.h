/* supervisor.h: creates the segment, forks and restarts the nodes, drives the client, injects
 * chaos, verifies the end state and reports. */
#ifndef PX_SUPERVISOR_H
#define PX_SUPERVISOR_H

#include "cli/cli.h"

/* Runs the whole job. Returns the process exit code (cli.h: EXIT_*). */
int sup_run(const struct cli_config *cfg);

#endif
