/* failover: how long a pool goes without a decision when its leader dies or hangs.
 *
 * For every configuration of the matrix (nodes x store x window) it runs the real paxos-shm
 * binary under load with --failover-every: SIGKILL of the leader every --every ms until at
 * least --kills events were timed, then SIGSTOP (held half the period, then SIGCONT) until at
 * least --stops were. paxos-shm times each event itself (--json, the "failover" section): the
 * time from the signal to the first decision by another leader, and the worst commit latency
 * the client saw until the next event. This program pools the events of every run of a
 * configuration and prints p50/p99/max; it also runs the configuration without faults and
 * with a leader kill every second, and prints the second's rounds/s as a share of the first.
 * --plot draws decisions per millisecond around the median kill of the first configuration.
 * Nothing here asserts a time: it prints figures. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define EVENTS_MAX 4096u
#define PLOT_MS    120u
#define RUNS_MAX   6u /* runs per kind of event before the configuration gives up */
#define DOC_MAX    (1u << 20)

struct events {
    uint32_t n, unanswered;
    double to[EVENTS_MAX], worst[EVENTS_MAX];
};

struct config {
    uint32_t nodes, window;
    const char *store;
    double rps_free, rps_kill_1s;
    struct events kill, stop;
    bool ok;
};

struct opts {
    uint32_t kills, stops, every_ms, stop_every_ms;
    bool quick;
    const char *json, *plot;
    char bin[PATH_MAX];
};

static struct config configs[8];
static uint32_t nconfigs;
static uint32_t plot[PLOT_MS];
static int plot_from_ms;
static bool plot_ok;

/* Runs paxos-shm with args (NULL-terminated, after the program name); reads its --json into
 * doc. 0 when it verified, -1 otherwise (one line on stderr). */
static int run_doc(const struct opts *o, const char *const *args, char *doc)
{
    char path[] = "/tmp/failover-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    const char *argv[40];
    int a = 0;
    argv[a++] = o->bin;
    for (int i = 0; args[i] != NULL && a < 34; i++)
        argv[a++] = args[i];
    argv[a++] = "--json";
    argv[a++] = path;
    argv[a++] = "--quiet";
    argv[a++] = "--timeout";
    argv[a++] = "600";
    argv[a] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(o->bin, (char *const *)argv);
        fprintf(stderr, "failover: cannot run %s: %s\n", o->bin, strerror(errno));
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    doc[0] = '\0';
    FILE *j = fopen(path, "r");
    if (j) {
        size_t n = fread(doc, 1, DOC_MAX - 1, j);
        doc[n] = '\0';
        fclose(j);
    }
    unlink(path);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(doc, "\"verified\":true") == NULL) {
        fprintf(stderr, "\nfailover: a run did not verify (exit status %d)\n",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}

/* Appends the run's per-event figures ([to_decision_us, worst_commit_us] pairs). */
static void take_events(const char *doc, struct events *ev)
{
    const char *p = strstr(doc, "\"per_event\":[");
    if (p == NULL)
        return;
    p += strlen("\"per_event\":[");
    while (*p == '[' && ev->n < EVENTS_MAX) {
        char *end = NULL;
        double to = strtod(p + 1, &end);
        double worst = strtod(end + 1, &end);
        p = end + 1; /* past ']' */
        if (*p == ',')
            p++;
        if (to < 0) {
            ev->unanswered++; /* no decision before the next event */
            continue;
        }
        ev->to[ev->n] = to;
        ev->worst[ev->n] = worst;
        ev->n++;
    }
}

static void take_plot(const char *doc)
{
    const char *p = strstr(doc, "\"decisions_per_ms\":[");
    if (p == NULL || plot_ok)
        return;
    plot_from_ms = (int)bench_json_num(doc, "from_ms");
    p += strlen("\"decisions_per_ms\":[");
    for (uint32_t i = 0; i < PLOT_MS; i++) {
        char *end = NULL;
        plot[i] = (uint32_t)strtoul(p, &end, 10);
        p = end + 1;
    }
    plot_ok = true;
}

static void fmt_u(char *buf, size_t n, uint64_t v)
{
    snprintf(buf, n, "%" PRIu64, v);
}

/* The common arguments of a configuration; returns the next free index. */
static int base_args(const struct config *c, const char **args, char *nodes, char *window,
                     char *rounds, uint64_t r)
{
    int a = 0;
    fmt_u(nodes, 16, c->nodes);
    fmt_u(window, 16, c->window);
    fmt_u(rounds, 32, r);
    args[a++] = "--nodes";
    args[a++] = nodes;
    args[a++] = "--window";
    args[a++] = window;
    args[a++] = "--store";
    args[a++] = c->store;
    args[a++] = "--rounds";
    args[a++] = rounds;
    return a;
}

/* Rounds that keep the drive going `seconds` at `rps`, at least 2000. */
static uint64_t rounds_for(double rps, double seconds)
{
    double r = rps * seconds;
    return r < 2000 ? 2000 : (uint64_t)r;
}

/* Runs with --failover-every until `want` events were timed (at most RUNS_MAX runs). */
static int timed_events(const struct opts *o, struct config *c, bool stop, uint32_t want, char *doc)
{
    struct events *ev = stop ? &c->stop : &c->kill;
    uint32_t every = stop ? o->stop_every_ms : o->every_ms;
    for (uint32_t run = 0; run < RUNS_MAX && ev->n + ev->unanswered < want; run++) {
        uint32_t missing = want - ev->n - ev->unanswered;
        /* Throughput falls under faults: plan 1.3 times the fault-free time (a run that ends
         * short of `want` events is followed by another). */
        double seconds = 1.3 * (missing + 1) * every / 1000.0;
        const char *args[32];
        char nodes[16], window[16], rounds[32], every_s[16];
        int a = base_args(c, args, nodes, window, rounds, rounds_for(c->rps_free, seconds));
        fmt_u(every_s, sizeof(every_s), every);
        args[a++] = "--failover-every";
        args[a++] = every_s;
        args[a++] = "--failover-signal";
        args[a++] = stop ? "stop" : "kill";
        args[a] = NULL;
        if (run_doc(o, args, doc) != 0)
            return -1;
        take_events(doc, ev);
        if (!stop && c == &configs[0])
            take_plot(doc);
    }
    return 0;
}

static int measure(const struct opts *o, struct config *c, char *doc)
{
    const char *args[32];
    char nodes[16], window[16], rounds[32];
    /* Fault-free rate from a short run, then a run of the same length planned around it. */
    int a = base_args(c, args, nodes, window, rounds, c->window == 1 ? 3000 : 30000);
    args[a] = NULL;
    if (run_doc(o, args, doc) != 0)
        return -1;
    double seconds = o->quick ? 1.0 : 4.0;
    a = base_args(c, args, nodes, window, rounds,
                  rounds_for(bench_json_num(doc, "rounds_per_s"), seconds));
    args[a] = NULL;
    if (run_doc(o, args, doc) != 0)
        return -1;
    c->rps_free = bench_json_num(doc, "rounds_per_s");
    a = base_args(c, args, nodes, window, rounds, rounds_for(c->rps_free, seconds));
    args[a++] = "--failover-every";
    args[a++] = "1000";
    args[a] = NULL;
    if (run_doc(o, args, doc) != 0)
        return -1;
    c->rps_kill_1s = bench_json_num(doc, "rounds_per_s");
    if (timed_events(o, c, false, o->kills, doc) != 0 ||
        timed_events(o, c, true, o->stops, doc) != 0)
        return -1;
    return 0;
}

/* Nearest-rank quantile of v[0..n) (sorted here). */
static double quantile(double *v, uint32_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(double), bench_cmp_double);
    uint32_t k = (uint32_t)(q * (double)n + 0.999999);
    return v[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

struct pcts {
    double p50, p99, max;
};

static struct pcts pcts_of(double *v, uint32_t n)
{
    struct pcts p = {quantile(v, n, 0.50), quantile(v, n, 0.99), quantile(v, n, 1.0)};
    return p;
}

static void print_row(FILE *f, const struct config *c, const char *kind, struct events *ev)
{
    struct pcts to = pcts_of(ev->to, ev->n), w = pcts_of(ev->worst, ev->n);
    fprintf(f, "%5u %6s %6u %4s %6u %3u | %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f | %9.0f %6.0f%%\n",
            c->nodes, c->store, c->window, kind, ev->n, ev->unanswered, to.p50 / 1e3, to.p99 / 1e3,
            to.max / 1e3, w.p50 / 1e3, w.p99 / 1e3, w.max / 1e3, c->rps_free,
            c->rps_free > 0 ? 100.0 * c->rps_kill_1s / c->rps_free : 0.0);
}

static void json_events(FILE *f, const char *name, struct events *ev)
{
    struct pcts to = pcts_of(ev->to, ev->n), w = pcts_of(ev->worst, ev->n);
    fprintf(f,
            "\"%s\":{\"events\":%u,\"unanswered\":%u,"
            "\"to_decision_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
            "\"worst_commit_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}",
            name, ev->n, ev->unanswered, to.p50, to.p99, to.max, w.p50, w.p99, w.max);
}

static int write_json(const struct opts *o)
{
    FILE *f = fopen(o->json, "w");
    if (f == NULL) {
        fprintf(stderr, "failover: --json %s: %s\n", o->json, strerror(errno));
        return -1;
    }
    fprintf(f, "{\"every_ms\":%u,\"stop_every_ms\":%u,\"configs\":[", o->every_ms,
            o->stop_every_ms);
    for (uint32_t i = 0; i < nconfigs; i++) {
        struct config *c = &configs[i];
        fprintf(f,
                "%s{\"nodes\":%u,\"store\":\"%s\",\"window\":%u,\"ok\":%s,"
                "\"rounds_per_s\":{\"no_faults\":%.1f,\"kill_every_1s\":%.1f},",
                i ? "," : "", c->nodes, c->store, c->window, c->ok ? "true" : "false", c->rps_free,
                c->rps_kill_1s);
        json_events(f, "kill", &c->kill);
        fprintf(f, ",");
        json_events(f, "stop", &c->stop);
        fprintf(f, "}");
    }
    fprintf(f,
            "],\"plot\":{\"nodes\":%u,\"store\":\"%s\",\"window\":%u,\"from_ms\":%d,"
            "\"decisions_per_ms\":[",
            configs[0].nodes, configs[0].store, configs[0].window, plot_from_ms);
    for (uint32_t i = 0; i < PLOT_MS; i++)
        fprintf(f, "%s%u", i ? "," : "", plot[i]);
    fprintf(f, "]}}\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int write_plot(const struct opts *o)
{
    if (!plot_ok)
        return -1;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "failover: --plot: gnuplot is not installed (apt-get install "
                        "gnuplot-nox); no plot written\n");
        return -1;
    }
    char dat[] = "/tmp/failover-plot-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    for (uint32_t i = 0; i < PLOT_MS; i++)
        fprintf(f, "%d %u\n", plot_from_ms + (int)i, plot[i]);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "gnuplot -e \"set terminal png size 900,500; set output '%s'; set xlabel 'ms from "
             "SIGKILL of the leader'; set ylabel 'decisions per ms'; set arrow from 0, graph 0 "
             "to 0, graph 1 nohead; plot '%s' with steps title '%u nodes, %s, window %u'\"",
             o->plot, dat, configs[0].nodes, configs[0].store, configs[0].window);
    int rc = system(cmd);
    unlink(dat);
    if (rc != 0) {
        fprintf(stderr, "failover: gnuplot failed (status %d)\n", rc);
        return -1;
    }
    printf("plot written to %s\n", o->plot);
    return 0;
}

static int parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "failover: --%s: '%s' is not a number in %u..%u\n", flag, s, lo, hi);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: failover [--quick] [--kills N] [--stops N] [--every MS] [--stop-every MS]\n"
               "                [--json FILE] [--plot FILE.png] [--bin PAXOS-SHM]\n"
               "Times leader fail-over of paxos-shm: SIGKILL (default 50 per configuration,\n"
               "every 200 ms) and SIGSTOP (default 20, every 1000 ms, held half of it) of the\n"
               "leader, 5 and 16 nodes, shm and sqlite, window 1 and 1024. --quick: 5 nodes,\n"
               "shm, window 1, 3 kills and 2 stops (a smoke run).\n"
               "Exit codes: 0 done, 1 a run did not verify, 2 usage.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"quick", no_argument, NULL, 'q'},
        {"kills", required_argument, NULL, 'k'},
        {"stops", required_argument, NULL, 's'},
        {"every", required_argument, NULL, 'e'},
        {"stop-every", required_argument, NULL, 'S'},
        {"json", required_argument, NULL, 'j'},
        {"plot", required_argument, NULL, 'p'},
        {"bin", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.kills = 50, .stops = 20, .every_ms = 200, .stop_every_ms = 1000};
    bool kills_set = false, stops_set = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'q':
            o->quick = true;
            break;
        case 'k':
            rc = parse_u32("kills", optarg, 1, EVENTS_MAX / 2, &o->kills);
            kills_set = true;
            break;
        case 's':
            rc = parse_u32("stops", optarg, 1, EVENTS_MAX / 2, &o->stops);
            stops_set = true;
            break;
        case 'e':
            rc = parse_u32("every", optarg, 20, 60000, &o->every_ms);
            break;
        case 'S':
            rc = parse_u32("stop-every", optarg, 20, 60000, &o->stop_every_ms);
            break;
        case 'j':
            o->json = optarg;
            break;
        case 'p':
            o->plot = optarg;
            break;
        case 'b':
            snprintf(o->bin, sizeof(o->bin), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "failover: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->quick) {
        o->kills = kills_set ? o->kills : 3;
        o->stops = stops_set ? o->stops : 2;
    }
    if (o->bin[0] == '\0') {
        char self[PATH_MAX] = "";
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len > 0) {
            self[len] = '\0';
            char *slash = strrchr(self, '/');
            if (slash)
                *slash = '\0';
        }
        snprintf(o->bin, sizeof(o->bin), "%s/../paxos-shm", self);
        if (!bench_is_program(o->bin))
            snprintf(o->bin, sizeof(o->bin), "%s/../../bin/paxos-shm", self);
    }
    if (!bench_is_program(o->bin)) {
        fprintf(stderr, "failover: --bin: '%s' is not an executable paxos-shm\n", o->bin);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    static const uint32_t nodes[] = {5, 16}, windows[] = {1, 1024};
    static const char *const stores[] = {"shm", "sqlite"};
    for (uint32_t n = 0; n < 2; n++)
        for (uint32_t s = 0; s < 2; s++)
            for (uint32_t w = 0; w < 2; w++)
                if (!o.quick || (n == 0 && s == 0 && w == 0))
                    configs[nconfigs++] = (struct config){
                        .nodes = nodes[n], .store = stores[s], .window = windows[w]};
    char *doc = malloc(DOC_MAX);
    if (doc == NULL)
        return 1;
    int code = 0;
    printf("leader SIGKILL every %u ms, SIGSTOP every %u ms (held %u ms); times in ms\n",
           o.every_ms, o.stop_every_ms, o.stop_every_ms / 2);
    printf("nodes  store window kind events miss | to decision: p50   p99       max | worst "
           "commit: p50  p99      max | rounds/s kill/1s\n");
    for (uint32_t i = 0; i < nconfigs; i++) {
        struct config *c = &configs[i];
        c->ok = measure(&o, c, doc) == 0;
        if (!c->ok)
            code = 1;
        print_row(stdout, c, "kill", &c->kill);
        print_row(stdout, c, "stop", &c->stop);
        fflush(stdout);
    }
    free(doc);
    if (o.json && write_json(&o) != 0)
        code = code ? code : 1;
    if (o.plot)
        (void)write_plot(&o);
    return code;
}
