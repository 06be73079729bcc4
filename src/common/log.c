#include "common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The longest part of a bad PAXOS_LOG value echoed in the error line: a level name has at most
 * 5 characters, so 32 show any typo, and a pasted blob does not flood the terminal. */
#define LOG_ECHO_MAX 32
/* The longest log line; a longer one is cut (and still ends in a newline). */
#define LOG_LINE_MAX 1024

int log_level_current = LOG_ERROR;
char log_who[32] = "supervisor";
/* PAXOS_LOG_TIME=1: every line starts with CLOCK_MONOTONIC seconds, one clock for every process
 * of the machine, so a fail-over can be timed step by step from the lines alone. */
static int log_time;

static const char *const log_names[] = {"error", "info", "debug", "trace"};

int log_init(const char *who)
{
    snprintf(log_who, sizeof(log_who), "%s", who);
    const char *t = getenv("PAXOS_LOG_TIME");
    log_time = t != NULL && strcmp(t, "1") == 0;
    const char *v = getenv("PAXOS_LOG");
    if (v == NULL || v[0] == '\0') {
        log_level_current = LOG_ERROR;
        return 0;
    }
    for (int i = 0; i < (int)(sizeof(log_names) / sizeof(log_names[0])); i++) {
        if (strcasecmp(v, log_names[i]) == 0) {
            log_level_current = i;
            return 0;
        }
    }
    size_t len = strlen(v);
    if (len > LOG_ECHO_MAX)
        fprintf(stderr, "paxos-shm: PAXOS_LOG: '%.*s...' (%zu characters) is not one of %s\n",
                LOG_ECHO_MAX, v, len, LOG_LEVELS);
    else
        fprintf(stderr, "paxos-shm: PAXOS_LOG: '%s' is not one of %s\n", v, LOG_LEVELS);
    return -1;
}

void log_set_node(unsigned id, unsigned incarnation)
{
    snprintf(log_who, sizeof(log_who), "node %u.%u", id, incarnation);
}

void log_line(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    int n = 0;
    if (log_time) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        n = snprintf(line, sizeof(line), "%lld.%06ld ", (long long)now.tv_sec, now.tv_nsec / 1000);
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, "paxos-shm[%s]: ", log_who);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    fflush(stderr); /* what the process printed before stays before this line */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* a log line that cannot be written is not worth failing the run over */
}
