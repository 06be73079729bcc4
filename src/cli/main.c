/* main.c: paxos-shm entry point: parse the command line, run the supervisor. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/fib_sm.h"
#include "common/log.h"
#include "paxos/px.h"
#include "supervisor/supervisor.h"

void px_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "paxos-shm: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

int main(int argc, char **argv)
{
    struct cli_config cfg;
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, said on stderr */
    errno = 0;
    int rc = cli_parse(argc, argv, &cfg);
    if (rc > 0) { /* --help or --version: printed, unless stdout failed */
        if (fflush(stdout) == 0 && !ferror(stdout))
            return EXIT_VERIFIED;
        fprintf(stderr, "paxos-shm: writing to stdout: %s\n", strerror(errno ? errno : EIO));
        return EXIT_RUNTIME;
    }
    if (rc < 0)
        return EXIT_USAGE;
    if (log_init("supervisor") != 0)
        return EXIT_USAGE;
    /* Fibonacci is a state machine like any user's: its 8-byte state is cheaper to snapshot
     * than the log is to keep, so it snapshots at every truncation of the log. */
    cfg.sm_state_max = FIB_SM_STATE_BYTES;
    cfg.sm_snap_entries = 1024;
    return sup_run(&cfg, fib_sm());
}
