/* main.c: paxos-shm entry point: parse the command line, run the supervisor. */
#include <stdlib.h>

#include "cli/cli.h"
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
    int rc = cli_parse(argc, argv, &cfg);
    if (rc > 0)
        return EXIT_VERIFIED;
    if (rc < 0)
        return EXIT_USAGE;
    if (log_init("supervisor") != 0)
        return EXIT_USAGE;
    return sup_run(&cfg);
}
