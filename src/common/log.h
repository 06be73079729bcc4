/* log.h: per-process logs on stderr, filtered by PAXOS_LOG=error|info|debug|trace, in any case
 * (default: errors only). A line is "paxos-shm[who]: message". */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_INFO, LOG_DEBUG, LOG_TRACE };
/* The accepted values of PAXOS_LOG, as --help, the error line and the README spell them. */
#define LOG_LEVELS "error|info|debug|trace"

extern int log_level_current;
extern char log_who[32];

/* Reads PAXOS_LOG (any case). Returns 0, or -1 (with one line on stderr, the value cut to a
 * few dozen characters) for an unknown level. */
int log_init(const char *who);
/* Names this process "node <id>.<incarnation>" in its log lines. */
void log_set_node(unsigned id, unsigned incarnation);

/* Writes one whole line "paxos-shm[who]: message\n" with one write(2): the processes of a pool
 * share stderr, and a line written in pieces interleaves with theirs. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG(level, ...)                                                                            \
    do {                                                                                           \
        if ((level) <= log_level_current)                                                          \
            log_line(__VA_ARGS__);                                                                 \
    } while (0)

#endif
