/* bench_util.h: small helpers the benchmark programs share (header-only). */
#ifndef PX_BENCH_UTIL_H
#define PX_BENCH_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* qsort order of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Finds "key": number in a flat JSON text (paxos-shm's --json output); -1 when absent. */
static inline double bench_json_num(const char *doc, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(doc, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* A regular file this process may execute. */
static inline bool bench_is_program(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

#endif
