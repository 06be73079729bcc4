#include "common/log.h"

#include <stdlib.h>
#include <string.h>

int log_level_current = LOG_ERROR;
char log_who[32] = "supervisor";

int log_init(const char *who)
{
    snprintf(log_who, sizeof(log_who), "%s", who);
    const char *v = getenv("PAXOS_LOG");
    if (v == NULL || v[0] == '\0' || strcmp(v, "error") == 0) {
        log_level_current = LOG_ERROR;
        return 0;
    }
    static const char *names[] = {"error", "info", "debug", "trace"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, names[i]) == 0) {
            log_level_current = i;
            return 0;
        }
    }
    fprintf(stderr, "paxos-shm: PAXOS_LOG: '%s' is not one of error|info|debug|trace\n", v);
    return -1;
}

void log_set_node(unsigned id, unsigned incarnation)
{
    snprintf(log_who, sizeof(log_who), "node %u.%u", id, incarnation);
}
