/* throughput: rounds per second of paxos-shm, side by side with its baselines, in one run.
 *
 * For every configuration of the matrix (nodes x store x window) it runs the real paxos-shm
 * binary several times (--json) and reports the median, min and max rounds/s, commit latency
 * p50/p99/p999, messages per round, CPU seconds per 100k rounds and peak RSS. Baselines are
 * measured in the same run so that the ratios hold on a noisy machine:
 *   socket     the same protocol and node loop over UNIX-domain socketpairs (--transport socket)
 *   bare       the message pattern of a round over the same rings with no protocol work
 *   prototype  the original prototype's way: one proposer, window 1 (no pipelining)
 * and, with --hosts K (root), the same pool spread over K hosts made of network namespaces
 * (tests/net/net.py): kind "zmq", nodes on one host on the rings, between hosts ZeroMQ.
 *
 * --command-bytes 8,256,4096,... runs every paxos-shm row and the bare row at each command
 * length (paxos-shm --command-bytes; longer than 8 bytes needs the sqlite store, so shm rows
 * at those lengths are skipped) and reports commands/s (one command per round: = rounds/s) and
 * MB/s of commands (rounds/s x bytes / 1e6). The bare row then also moves each round's DATA
 * slots (bare.h), so its MB/s is the ceiling of this transport. The other baselines run at
 * 8 bytes only. Nothing here asserts a time: it prints figures. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bare.h"
#include "common/cmd.h"

#define LIST_MAX 8
#define REPS_MAX 15

#define ROWS_MAX 1024
/* Commands a run moves at most, by default (--mib-per-run): the rows of long commands run
 * fewer rounds, so that 64 KiB commands do not write gigabytes into every node's store. */
#define MIB_PER_RUN_DEFAULT 256u

struct figures {
    double rps, p50, p99, p999, msgs_per_round, cpu_per_100k, rss_mb;
    double torn, missing; /* paxos-shm: commands.streams_torn and .missing of the run */
    bool ok;
};

struct row {
    const char *kind; /* "paxos-shm", "socket", "prototype", "bare", "zmq" */
    uint32_t nodes, window;
    const char *store;
    uint32_t bytes;  /* command length (8: the value alone) */
    uint64_t rounds; /* per run */
    uint32_t reps;
    struct figures runs[REPS_MAX];
    struct figures med; /* medians of every field */
    double rps_min, rps_max;
    double torn, missing; /* paxos-shm: summed over the runs */
    uint32_t failed;      /* runs that did not verify (the medians are of the others) */
};

struct opts {
    uint32_t nodes[LIST_MAX], nnodes;
    uint32_t windows[LIST_MAX], nwindows;
    uint32_t sizes[LIST_MAX], nsizes; /* --command-bytes */
    uint32_t mib_per_run;
    const char *stores[2];
    uint32_t nstores;
    uint32_t reps;
    uint64_t rounds, rounds_w1;
    bool quick;
    uint32_t hosts; /* --hosts K: zmq rows over K namespaced hosts; 0 = none */
    const char *json, *plot;
    char bin[PATH_MAX];
    char keygen[PATH_MAX + 8];
};

static double median(double *v, uint32_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_paxos(const struct opts *o, const struct row *r, struct figures *f)
{
    char path[] = "/tmp/throughput-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    close(fd);
    char nodes[16], rounds[32], window[16];
    snprintf(nodes, sizeof(nodes), "%u", r->nodes);
    snprintf(rounds, sizeof(rounds), "%" PRIu64, r->rounds);
    snprintf(window, sizeof(window), "%u", r->window);
    const char *argv[40];
    char bytes[16];
    snprintf(bytes, sizeof(bytes), "%u", r->bytes);
    int a = 0;
    char hosts[16];
    snprintf(hosts, sizeof(hosts), "%u", o->hosts);
    bool zmq = strcmp(r->kind, "zmq") == 0;
    if (zmq) {
        /* The pool file sets the nodes; net.py makes the hosts and runs one supervisor each. */
        argv[a++] = "python3";
        argv[a++] = PX_NET_PY;
        argv[a++] = o->bin;
        argv[a++] = o->keygen;
        argv[a++] = "pool";
        argv[a++] = hosts;
        argv[a++] = nodes;
        argv[a++] = path;
    } else {
        argv[a++] = o->bin;
        argv[a++] = "--nodes";
        argv[a++] = nodes;
    }
    argv[a++] = "--rounds";
    argv[a++] = rounds;
    argv[a++] = "--window";
    argv[a++] = window;
    argv[a++] = "--store";
    argv[a++] = r->store;
    if (!zmq) {
        argv[a++] = "--json";
        argv[a++] = path;
        argv[a++] = "--quiet";
    }
    argv[a++] = "--timeout";
    argv[a++] = "300";
    if (strcmp(r->kind, "socket") == 0) {
        argv[a++] = "--transport";
        argv[a++] = "socket";
    }
    if (strcmp(r->kind, "prototype") == 0) {
        argv[a++] = "--proposers";
        argv[a++] = "1";
    }
    if (r->bytes > CMD_INLINE_BYTES) {
        argv[a++] = "--command-bytes";
        argv[a++] = bytes;
    }
    argv[a] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "throughput: cannot run %s: %s\n", o->bin, strerror(errno));
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0)
        return -errno;
    char doc[8192] = "";
    FILE *j = fopen(path, "r");
    if (j) {
        size_t n = fread(doc, 1, sizeof(doc) - 1, j);
        doc[n] = '\0';
        fclose(j);
    }
    unlink(path);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(doc, "\"verified\":true") == NULL) {
        fprintf(stderr,
                "\nthroughput: %s --nodes %u --window %u --store %s --command-bytes %u did not "
                "verify\n",
                r->kind, r->nodes, r->window, r->store, r->bytes);
        f->ok = false;
        return -EIO;
    }
    double done = bench_json_num(doc, "rounds_done");
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    f->rps = bench_json_num(doc, "rounds_per_s");
    f->p50 = bench_json_num(doc, "p50");
    f->p99 = bench_json_num(doc, "p99");
    f->p999 = bench_json_num(doc, "p999");
    f->msgs_per_round = bench_json_num(doc, "messages") / done;
    /* CPU of the whole process tree (startup included) per 100k rounds decided. */
    f->cpu_per_100k = cpu / done * 100000.0;
    f->rss_mb = (double)ru.ru_maxrss / 1024.0; /* the largest process of the tree */
    f->torn = bench_json_num(doc, "streams_torn");
    f->missing = bench_json_num(doc, "missing");
    f->ok = true;
    return 0;
}

static int run_bare(const struct row *r, struct figures *f)
{
    struct bare_result b;
    uint64_t rounds = r->rounds;
    int rc = bare_run(r->nodes, r->window, rounds, 4096, r->bytes, &b);
    if (rc != 0) {
        f->ok = false;
        return rc;
    }
    f->rps = b.rounds_per_s;
    f->p50 = b.latency_us_p50;
    f->p99 = b.latency_us_p99;
    f->p999 = b.latency_us_p999;
    f->msgs_per_round = b.msgs_per_round;
    f->cpu_per_100k = b.cpu_s / (double)rounds * 100000.0;
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    f->rss_mb = (double)ru.ru_maxrss / 1024.0;
    f->ok = true;
    return 0;
}

static void summarise(struct row *r)
{
    double v[7][REPS_MAX];
    uint32_t n = 0;
    r->rps_min = 1e300;
    r->rps_max = 0;
    for (uint32_t i = 0; i < r->reps; i++) {
        const struct figures *f = &r->runs[i];
        if (!f->ok)
            continue;
        v[0][n] = f->rps;
        v[1][n] = f->p50;
        v[2][n] = f->p99;
        v[3][n] = f->p999;
        v[4][n] = f->msgs_per_round;
        v[5][n] = f->cpu_per_100k;
        v[6][n] = f->rss_mb;
        r->rps_min = f->rps < r->rps_min ? f->rps : r->rps_min;
        r->rps_max = f->rps > r->rps_max ? f->rps : r->rps_max;
        r->torn += f->torn > 0 ? f->torn : 0;
        r->missing += f->missing > 0 ? f->missing : 0;
        n++;
    }
    r->failed = r->reps - n;
    r->med.ok = n > 0;
    r->med.rps = median(v[0], n);
    r->med.p50 = median(v[1], n);
    r->med.p99 = median(v[2], n);
    r->med.p999 = median(v[3], n);
    r->med.msgs_per_round = median(v[4], n);
    r->med.cpu_per_100k = median(v[5], n);
    r->med.rss_mb = median(v[6], n);
    if (n == 0)
        r->rps_min = 0;
}

static void machine(FILE *out, bool json)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof(model), "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (json)
        fprintf(out, "\"machine\":{\"cores\":%ld,\"cpu\":\"%s\",\"kernel\":\"%s %s\"}", cores,
                model, u.sysname, u.release);
    else
        fprintf(out, "machine: %ld cores, %s, %s %s\n", cores, model, u.sysname, u.release);
}

static struct row *find(struct row *rows, uint32_t n, const char *kind, uint32_t nodes,
                        uint32_t window, const char *store, uint32_t bytes)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(rows[i].kind, kind) == 0 && rows[i].nodes == nodes && rows[i].window == window &&
            rows[i].bytes == bytes && (store == NULL || strcmp(rows[i].store, store) == 0))
            return &rows[i];
    return NULL;
}

/* MB/s of commands: rounds/s x command bytes / 1e6 (one command per round). */
static double mbps(double rps, uint32_t bytes)
{
    return rps * (double)bytes / 1e6;
}

/* The baselines of a paxos-shm row, in this run (NULL: not in it). */
static struct row *bare_of(struct row *rows, uint32_t n, const struct row *r)
{
    return find(rows, n, "bare", r->nodes, r->window, NULL, r->bytes);
}
static struct row *socket_of(struct row *rows, uint32_t n, const struct row *r)
{
    return find(rows, n, "socket", r->nodes, r->window, "shm", r->bytes);
}
static struct row *prototype_of(struct row *rows, uint32_t n, const struct row *r)
{
    return find(rows, n, "prototype", r->nodes, 1, "shm", r->bytes);
}

static double ratio(const struct row *a, const struct row *b)
{
    return b && b->med.ok && b->med.rps > 0 && a->med.ok ? a->med.rps / b->med.rps : 0;
}

static void print_table(FILE *out, struct row *rows, uint32_t n, const struct opts *o)
{
    fprintf(out,
            "\n%-10s %5s %6s %6s %8s | %10s %21s %10s %9s | %8s %8s %8s | %6s %7s %6s | %6s %6s "
            "%6s\n",
            "kind", "nodes", "store", "window", "bytes", "rounds/s", "(min .. max)", "cmds/s",
            "MB/s", "p50 us", "p99 us", "p999 us", "msg/r", "cpu/100k", "rss MB", "x bare",
            "x sock", "x proto");
    for (uint32_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        if (!r->med.ok) {
            fprintf(out, "%-10s %5u %6s %6u %8u | %10s\n", r->kind, r->nodes, r->store, r->window,
                    r->bytes, "failed");
            continue;
        }
        fprintf(out,
                "%-10s %5u %6s %6u %8u | %10.0f (%9.0f .. %9.0f) %10.0f %9.1f | %8.1f %8.1f "
                "%8.1f | %6.2f %7.2f %6.1f",
                r->kind, r->nodes, r->store, r->window, r->bytes, r->med.rps, r->rps_min,
                r->rps_max, r->med.rps, mbps(r->med.rps, r->bytes), r->med.p50, r->med.p99,
                r->med.p999, r->med.msgs_per_round, r->med.cpu_per_100k, r->med.rss_mb);
        if (strcmp(r->kind, "paxos-shm") == 0) {
            double b = ratio(r, bare_of(rows, n, r));
            double s = ratio(r, socket_of(rows, n, r));
            double p = ratio(r, prototype_of(rows, n, r));
            fprintf(out, " | %6.2f %6.2f %6.2f", b, s, p);
        }
        if (r->failed > 0)
            fprintf(out, "  (%u of %u runs failed)", r->failed, r->reps);
        fputc('\n', out);
    }
    fprintf(out,
            "\nx bare: paxos-shm / bare messaging ceiling (same nodes, window, command bytes); x "
            "sock: rings / socketpairs (same protocol, nodes, window; shm store); x proto: / one "
            "proposer with window 1 (same nodes). 0 = baseline not in this run. cmds/s = "
            "rounds/s (one command per round); MB/s = rounds/s x bytes / 1e6.\n");
    bool longer = false;
    for (uint32_t i = 0; i < o->nsizes; i++)
        longer |= o->sizes[i] > CMD_INLINE_BYTES;
    if (!longer)
        return;
    /* The fraction of the transport's ceiling each row reaches, with more digits than the
     * table's column (it is small for long commands). */
    fprintf(out, "\nMB/s of commands against the bare row (the same bytes over the same rings, no "
                 "protocol):\n");
    for (uint32_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        if (strcmp(r->kind, "paxos-shm") != 0)
            continue;
        const struct row *b = bare_of(rows, n, r);
        if (!r->med.ok || b == NULL || !b->med.ok) {
            fprintf(out, "  nodes %2u %6s window %4u %8u B: %s\n", r->nodes, r->store, r->window,
                    r->bytes, r->med.ok ? "no bare row" : "failed");
            continue;
        }
        fprintf(out, "  nodes %2u %6s window %4u %8u B: %9.1f of %9.1f MB/s = %.4f of bare%s\n",
                r->nodes, r->store, r->window, r->bytes, mbps(r->med.rps, r->bytes),
                mbps(b->med.rps, b->bytes), ratio(r, b),
                r->failed ? " (runs failed: see the table)" : "");
    }
}

static int write_json(const char *path, struct row *rows, uint32_t n, const struct opts *o)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "throughput: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputc('{', f);
    machine(f, true);
    fprintf(f, ",\"reps\":%u,\"rounds\":%" PRIu64 ",\"rounds_window_1\":%" PRIu64, o->reps,
            o->rounds, o->rounds_w1);
    fprintf(f, ",\"mib_per_run\":%u,\"command_bytes\":[", o->mib_per_run);
    for (uint32_t i = 0; i < o->nsizes; i++)
        fprintf(f, "%s%u", i ? "," : "", o->sizes[i]);
    /* Rows asked for and not run: none since the shm store keeps long commands (the key stays
     * for readers of older files). */
    fprintf(f, "],\"skipped\":[");
    fprintf(f, "],\"rows\":[");
    for (uint32_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        fprintf(f,
                "%s{\"kind\":\"%s\",\"nodes\":%u,\"store\":\"%s\",\"window\":%u,\"ok\":%s,"
                "\"command_bytes\":%u,\"rounds\":%" PRIu64 ","
                "\"rounds_per_s\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f},"
                "\"commands_per_s\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f},"
                "\"mb_per_s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},"
                "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f},"
                "\"messages_per_round\":%.3f,\"cpu_s_per_100k_rounds\":%.3f,\"peak_rss_mb\":%.1f,"
                "\"failed_runs\":%u,\"runs\":[",
                i ? "," : "", r->kind, r->nodes, r->store, r->window, r->med.ok ? "true" : "false",
                r->bytes, r->rounds, r->med.rps, r->rps_min, r->rps_max, r->med.rps, r->rps_min,
                r->rps_max, mbps(r->med.rps, r->bytes), mbps(r->rps_min, r->bytes),
                mbps(r->rps_max, r->bytes), r->med.p50, r->med.p99, r->med.p999,
                r->med.msgs_per_round, r->med.cpu_per_100k, r->med.rss_mb, r->failed);
        for (uint32_t k = 0; k < r->reps; k++)
            fprintf(f, "%s%.1f", k ? "," : "", r->runs[k].ok ? r->runs[k].rps : 0.0);
        fprintf(f, "]");
        if (strcmp(r->kind, "paxos-shm") == 0) {
            fprintf(f, ",\"ratio\":{\"bare\":%.4f,\"socket\":%.4f,\"prototype\":%.4f}",
                    ratio(r, bare_of(rows, n, r)), ratio(r, socket_of(rows, n, r)),
                    ratio(r, prototype_of(rows, n, r)));
            fprintf(f, ",\"commands\":{\"streams_torn\":%.0f,\"missing\":%.0f}", r->torn,
                    r->missing);
        }
        fputc('}', f);
    }
    fprintf(f, "]}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "throughput: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int plot(const char *png, struct row *rows, uint32_t n, const struct opts *o)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "throughput: --plot: gnuplot is not installed (apt-get install "
                        "gnuplot-nox); no plot written\n");
        return -1;
    }
    char dat[] = "/tmp/throughput-plot-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    /* One block per (kind, store, window, command bytes) that has rows: nodes, rounds/s. */
    char titles[32][64];
    uint32_t blocks = 0;
    for (uint32_t z = 0; z < o->nsizes; z++) {
        for (uint32_t w = 0; w < o->nwindows; w++) {
            for (uint32_t s = 0; s < o->nstores; s++) {
                for (int k = 0; k < 3 && blocks < 32; k++) {
                    static const char *const kinds[] = {"paxos-shm", "bare", "socket"};
                    const char *kind = kinds[k];
                    if (k > 0 && s > 0)
                        continue; /* the baselines once per window */
                    uint32_t points = 0;
                    for (uint32_t i = 0; i < o->nnodes; i++) {
                        struct row *r = find(rows, n, kind, o->nodes[i], o->windows[w],
                                             k == 0 ? o->stores[s] : NULL, o->sizes[z]);
                        if (r && r->med.ok) {
                            fprintf(f, "%u %.1f\n", r->nodes, r->med.rps);
                            points++;
                        }
                    }
                    if (points == 0)
                        continue; /* not run at this length */
                    fprintf(f, "\n\n");
                    if (o->nsizes > 1)
                        snprintf(titles[blocks], sizeof(titles[0]), "%s %s w=%u %uB", kind,
                                 k == 0 ? o->stores[s] : "", o->windows[w], o->sizes[z]);
                    else
                        snprintf(titles[blocks], sizeof(titles[0]), "%s %s w=%u", kind,
                                 k == 0 ? o->stores[s] : "", o->windows[w]);
                    blocks++;
                }
            }
        }
    }
    fclose(f);
    char cmd[8192];
    int len = snprintf(cmd, sizeof(cmd),
                       "gnuplot -e \"set terminal png size 900,600; set output '%s'; set logscale "
                       "y; set xlabel 'nodes'; set ylabel 'rounds/s'; set key outside; plot ",
                       png);
    for (uint32_t b = 0; b < blocks && len < (int)sizeof(cmd) - 200; b++)
        len += snprintf(cmd + len, sizeof(cmd) - (size_t)len,
                        "%s'%s' index %u with linespoints title '%s'", b ? ", " : "", dat, b,
                        titles[b]);
    snprintf(cmd + len, sizeof(cmd) - (size_t)len, "\"");
    int rc = system(cmd);
    unlink(dat);
    if (rc != 0) {
        fprintf(stderr, "throughput: gnuplot failed (status %d)\n", rc);
        return -1;
    }
    printf("plot written to %s\n", png);
    return 0;
}

static int parse_list(const char *flag, const char *s, uint32_t *out, uint32_t *n, uint32_t lo,
                      uint32_t hi)
{
    *n = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end = NULL;
        unsigned long v = strtoul(tok, &end, 10);
        if (*end != '\0' || v < lo || v > hi || *n == LIST_MAX) {
            fprintf(stderr, "throughput: --%s: '%s' is not a list of integers in %u..%u\n", flag, s,
                    lo, hi);
            return -1;
        }
        out[(*n)++] = (uint32_t)v;
    }
    return *n ? 0 : -1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: throughput [--quick] [--nodes 3,5,16] [--window 1,1024] [--store shm,sqlite]\n"
            "                  [--command-bytes 8,256,4096,65536] [--mib-per-run M]\n"
            "                  [--reps N] [--rounds N] [--json FILE] [--plot FILE.png]\n"
            "                  [--bin PATH-TO-paxos-shm] [--hosts K]\n"
            "Runs paxos-shm over the matrix nodes x store x window x command bytes, several times\n"
            "each, and the baselines (socket transport, bare messaging ceiling, one proposer with\n"
            "window 1) in the same run; prints medians and ratios. --command-bytes (default 8):\n"
            "each round's command length (8..64 MiB), on every store; the bare row moves the same\n"
            "DATA slots, and a run moves at most --mib-per-run MiB of commands (default %u;\n"
            "fewer rounds, at least 1). The\n"
            "socket, prototype and zmq baselines run at 8 bytes. --hosts K (root) adds rows of\n"
            "the same pools spread over K hosts made of network namespaces, linked by ZeroMQ.\n",
            MIB_PER_RUN_DEFAULT);
}

/* A regular file this process may execute (a directory passes access(X_OK) too). */
static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {
        {"quick", no_argument, NULL, 'q'},
        {"nodes", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},
        {"store", required_argument, NULL, 's'},
        {"reps", required_argument, NULL, 'r'},
        {"rounds", required_argument, NULL, 'R'},
        {"json", required_argument, NULL, 'j'},
        {"plot", required_argument, NULL, 'p'},
        {"bin", required_argument, NULL, 'b'},
        {"hosts", required_argument, NULL, 'H'},
        {"command-bytes", required_argument, NULL, 'c'},
        {"mib-per-run", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint32_t reps = 0, one = 0;
    uint64_t rounds = 0;
    const char *nodes = NULL, *windows = NULL, *stores = NULL, *sizes = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q':
            o->quick = true;
            break;
        case 'n':
            nodes = optarg;
            break;
        case 'w':
            windows = optarg;
            break;
        case 's':
            stores = optarg;
            break;
        case 'r':
            if (parse_list("reps", optarg, &reps, &one, 1, REPS_MAX) || one != 1)
                return -1;
            break;
        case 'R': {
            char *end = NULL;
            rounds = strtoull(optarg, &end, 10);
            if (*end || rounds < 100 || rounds > 100000000) {
                fprintf(stderr, "throughput: --rounds: '%s' is not in 100..100000000\n", optarg);
                return -1;
            }
            break;
        }
        case 'j':
            o->json = optarg;
            break;
        case 'p':
            o->plot = optarg;
            break;
        case 'b':
            snprintf(o->bin, sizeof(o->bin), "%s", optarg);
            break;
        case 'H':
            if (parse_list("hosts", optarg, &o->hosts, &one, 2, 16) || one != 1)
                return -1;
            break;
        case 'c':
            sizes = optarg;
            break;
        case 'm':
            if (parse_list("mib-per-run", optarg, &o->mib_per_run, &one, 1, 65536) || one != 1)
                return -1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "throughput: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    o->reps = reps ? reps : (o->quick ? 1 : 5);
    o->rounds = rounds ? rounds : (o->quick ? 5000 : 100000);
    o->rounds_w1 = o->rounds / (o->quick ? 5 : 10);
    if (parse_list("nodes", nodes ? nodes : (o->quick ? "3" : "3,5,16"), o->nodes, &o->nnodes, 1,
                   64))
        return -1;
    if (parse_list("window", windows ? windows : "1,1024", o->windows, &o->nwindows, 1, 1024))
        return -1;
    if (parse_list("command-bytes", sizes ? sizes : "8", o->sizes, &o->nsizes, CMD_INLINE_BYTES,
                   CMD_BYTES_MAX))
        return -1;
    if (o->mib_per_run == 0)
        o->mib_per_run = MIB_PER_RUN_DEFAULT;
    const char *st = stores ? stores : "shm,sqlite";
    o->nstores = 0;
    if (strstr(st, "shm"))
        o->stores[o->nstores++] = "shm";
    if (strstr(st, "sqlite"))
        o->stores[o->nstores++] = "sqlite";
    if (o->nstores == 0) {
        fprintf(stderr, "throughput: --store: '%s' names neither shm nor sqlite\n", st);
        return -1;
    }
    if (o->bin[0] == '\0') {
        /* Default: paxos-shm in the build directory above bench/, or, installed, in bin/
         * beside libexec/paxos-shm/ (cmake --install). */
        char self[PATH_MAX - 32];
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len <= 0)
            return -1;
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        *slash = '\0';
        snprintf(o->bin, sizeof(o->bin), "%s/../paxos-shm", self);
        if (!bench_is_program(o->bin))
            snprintf(o->bin, sizeof(o->bin), "%s/../../bin/paxos-shm", self);
    }
    snprintf(o->keygen, sizeof(o->keygen), "%s-keygen", o->bin);
    if (!bench_is_program(o->bin)) {
        fprintf(stderr, "throughput: %s: %s (build paxos-shm or pass --bin)\n", o->bin,
                errno ? strerror(errno) : "not an executable file");
        return -1;
    }
    return 0;
}

/* Rounds per run of a row: --rounds (window 1: its share), and for long commands at most
 * --mib-per-run MiB of them. */
static uint64_t rounds_for(const struct opts *o, uint32_t window, uint32_t bytes)
{
    uint64_t base = window == 1 ? o->rounds_w1 : o->rounds;
    if (bytes <= CMD_INLINE_BYTES)
        return base;
    uint64_t cap = ((uint64_t)o->mib_per_run << 20) / bytes;
    return cap < 1 ? 1 : cap < base ? cap : base;
}

static bool has_8(const struct opts *o)
{
    for (uint32_t z = 0; z < o->nsizes; z++)
        if (o->sizes[z] <= CMD_INLINE_BYTES)
            return true;
    return false;
}

/* The rows of the run, in the order they run in each pass. 0, or -1 when too many. */
static int matrix(const struct opts *o, struct row *rows, uint32_t *count)
{
    uint32_t n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n == ROWS_MAX)                                                                         \
            return -1;                                                                             \
        rows[n] = (struct row){__VA_ARGS__};                                                       \
        rows[n].rounds = rounds_for(o, rows[n].window, rows[n].bytes);                             \
        n++;                                                                                       \
    } while (0)
    for (uint32_t i = 0; i < o->nnodes; i++) {
        uint32_t nodes = o->nodes[i];
        for (uint32_t w = 0; w < o->nwindows; w++) {
            uint32_t window = o->windows[w];
            for (uint32_t z = 0; z < o->nsizes; z++) {
                uint32_t bytes = o->sizes[z];
                bool longer = bytes > CMD_INLINE_BYTES;
                for (uint32_t s = 0; s < o->nstores; s++)
                    ADD(.kind = "paxos-shm", .nodes = nodes, .window = window,
                        .store = o->stores[s], .bytes = bytes);
                if (!longer)
                    ADD(.kind = "socket", .nodes = nodes, .window = window, .store = "shm",
                        .bytes = bytes);
                ADD(.kind = "bare", .nodes = nodes, .window = window, .store = "-", .bytes = bytes);
                for (uint32_t s = 0; !longer && o->hosts && nodes >= o->hosts && s < o->nstores;
                     s++)
                    ADD(.kind = "zmq", .nodes = nodes, .window = window, .store = o->stores[s],
                        .bytes = bytes);
            }
        }
        if (has_8(o))
            ADD(.kind = "prototype", .nodes = nodes, .window = 1, .store = "shm",
                .bytes = CMD_INLINE_BYTES);
    }
#undef ADD
    *count = n;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof(o));
    if (parse(argc, argv, &o) != 0)
        return 2;
    static struct row rows[ROWS_MAX];
    uint32_t n = 0;
    if (matrix(&o, rows, &n) != 0) {
        fprintf(stderr, "throughput: more than %d rows: shorten a list\n", ROWS_MAX);
        return 2;
    }
    machine(stdout, false);
    printf("paxos-shm: %s; %u repetitions; %" PRIu64 " rounds (window 1: %" PRIu64 ")\n", o.bin,
           o.reps, o.rounds, o.rounds_w1);
    for (uint32_t z = 0; z < o.nsizes; z++) {
        uint32_t b = o.sizes[z];
        if (b <= CMD_INLINE_BYTES)
            continue;
        printf("command bytes %u: %" PRIu64 " rounds per run (window 1: %" PRIu64
               "; at most %u MiB of commands)\n",
               b, rounds_for(&o, 2, b), rounds_for(&o, 1, b), o.mib_per_run);
    }
    bool tty = isatty(STDERR_FILENO);
    int failures = 0;
    /* Repetitions outermost: each pass measures every configuration once, so a slow phase of
     * the machine touches all of them alike. */
    for (uint32_t rep = 0; rep < o.reps; rep++) {
        for (uint32_t i = 0; i < n; i++) {
            struct row *r = &rows[i];
            if (tty)
                fprintf(stderr,
                        "\r\033[Kthroughput: pass %u/%u, %s nodes=%u store=%s window=%u bytes=%u",
                        rep + 1, o.reps, r->kind, r->nodes, r->store, r->window, r->bytes);
            else
                fprintf(stderr, "throughput: pass %u/%u, %s nodes=%u store=%s window=%u bytes=%u\n",
                        rep + 1, o.reps, r->kind, r->nodes, r->store, r->window, r->bytes);
            int rc = strcmp(r->kind, "bare") == 0 ? run_bare(r, &r->runs[rep])
                                                  : run_paxos(&o, r, &r->runs[rep]);
            failures += rc != 0;
            r->reps = rep + 1;
        }
    }
    if (tty)
        fprintf(stderr, "\r\033[K");
    for (uint32_t i = 0; i < n; i++)
        summarise(&rows[i]);
    print_table(stdout, rows, n, &o);
    int rc = failures ? 1 : 0;
    if (o.json && write_json(o.json, rows, n, &o) != 0)
        rc = 1;
    if (o.plot)
        (void)plot(o.plot, rows, n, &o);
    return rc;
}
