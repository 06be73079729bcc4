/* star: the star pattern (star.h) alone, or alternated with the bare ceiling (bare.h) in one
 * run so the two can be compared under the same machine load. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bare.h"
#include "star.h"

#define STAR_REPS_MAX 99

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: star [--nodes N] [--window W] [--rounds R] [--reps K] [--bare]\n"
            "Leader and N-1 followers (default 16) exchange 64-byte messages over the\n"
            "point-to-point rings with batch drain and futex sleep, no protocol work;\n"
            "window W rounds in flight (default 1024), R rounds (default 300000), K runs\n"
            "(default 1, at most %d). --bare alternates each run with the bare ceiling of\n"
            "bench/throughput and prints both medians and their ratio; --bare-only runs\n"
            "only the bare ceiling.\n",
            STAR_REPS_MAX);
    return rc;
}

static int parse_u(const char *name, const char *arg, unsigned long lo, unsigned long hi,
                   unsigned long *out)
{
    char *end = NULL;
    unsigned long v = strtoul(arg, &end, 10);
    if (end == arg || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "star: --%s: '%s' is not in %lu..%lu\n", name, arg, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static void print(const char *kind, unsigned rep, const struct bare_result *r)
{
    printf("%-5s run %2u: %10.0f rounds/s  p50 %8.1f us  p99 %8.1f us  msg/r %5.2f  cpu %.2f s\n",
           kind, rep, r->rounds_per_s, r->latency_us_p50, r->latency_us_p99, r->msgs_per_round,
           r->cpu_s);
}

int main(int argc, char **argv)
{
    unsigned long nodes = 16, window = 1024, rounds = 300000, reps = 1;
    int bare = 0, star = 1;
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},  {"window", required_argument, NULL, 'w'},
        {"rounds", required_argument, NULL, 'r'}, {"reps", required_argument, NULL, 'k'},
        {"bare", no_argument, NULL, 'b'},         {"bare-only", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'n':
            rc = parse_u("nodes", optarg, 2, 64, &nodes);
            break;
        case 'w':
            rc = parse_u("window", optarg, 1, 4096, &window);
            break;
        case 'r':
            rc = parse_u("rounds", optarg, 1, 100000000, &rounds);
            break;
        case 'k':
            rc = parse_u("reps", optarg, 1, STAR_REPS_MAX, &reps);
            break;
        case 'b':
            bare = 1;
            break;
        case 'o':
            bare = 1, star = 0;
            break;
        case 'h':
            return usage(stdout, 0);
        default:
            return usage(stderr, 2);
        }
        if (rc != 0)
            return 2;
    }
    if (optind != argc)
        return usage(stderr, 2);
    double star_rps[STAR_REPS_MAX], bare_rps[STAR_REPS_MAX];
    double star_p50[STAR_REPS_MAX], bare_p50[STAR_REPS_MAX];
    for (unsigned i = 0; i < reps; i++) {
        struct bare_result r;
        if (star && star_run((uint32_t)nodes, (uint32_t)window, rounds, 4096, &r) != 0)
            return 3;
        if (star)
            print("star", i + 1, &r);
        star_rps[i] = r.rounds_per_s;
        star_p50[i] = r.latency_us_p50;
        if (!bare)
            continue;
        if (bare_run((uint32_t)nodes, (uint32_t)window, rounds, 4096, 8, &r) != 0)
            return 3;
        print("bare", i + 1, &r);
        bare_rps[i] = r.rounds_per_s;
        bare_p50[i] = r.latency_us_p50;
    }
    double s = star ? median(star_rps, (unsigned)reps) : 1;
    double sp = star ? median(star_p50, (unsigned)reps) : 0;
    if (star)
        printf("star  median: %10.0f rounds/s  p50 %8.1f us  (nodes %lu, window %lu, %lu rounds)\n",
               s, sp, nodes, window, rounds);
    if (bare) {
        double b = median(bare_rps, (unsigned)reps), bp = median(bare_p50, (unsigned)reps);
        printf("bare  median: %10.0f rounds/s  p50 %8.1f us  bare/star %.3f\n", b, bp, b / s);
    }
    return 0;
}
