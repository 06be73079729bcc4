/* sim_golden.c: golden traces of scenario scripts (etcd-raft's datadriven testdata).
 *
 * A script may end with a line `-- expect --` and, after it, the summary the run must produce:
 * the virtual time and the client's rounds, per node its liveness, leader belief and durable
 * state (promised ballot, applied index, value, truncation), the decided log as runs of
 * requests, and the fault counters that moved. The summary is a function of the file alone (one
 * seed, virtual time), so a difference is a change of behaviour: the run fails and prints the
 * first differing lines. `px_sim --script F --rewrite` writes the summary into F after the
 * marker instead (everything before it untouched); the author reviews the change as a diff.
 */
#include "sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Lines of context printed before the first difference, and differing lines shown after it. */
#define SIM_GOLDEN_CONTEXT 3
#define SIM_GOLDEN_SHOWN   8
/* Runs of the decided log listed one per line; a longer log (a long, reordered run) is summed
 * up in one line, so the trace stays short enough to review. */
#define SIM_GOLDEN_RUNS_MAX 16

const char sim_golden_marker[] = "-- expect --\n";

static void sim_golden_ballot(FILE *out, const char *key, px_ballot_t b)
{
    if (b == 0)
        fprintf(out, " %s=-", key);
    else
        fprintf(out, " %s=%" PRIu64 ".%u", key, px_ballot_counter(b), px_ballot_node(b));
}

static void sim_golden_node(const struct sim *s, uint16_t id, FILE *out)
{
    const struct sim_node *nd = &s->node[id];
    const struct sim_store *st = &nd->st;
    uint64_t roles = s->cfg.roles[id];
    fprintf(out, "node %u: %c%c%c %s", id, roles & PX_ROLE_PROPOSER ? 'p' : '-',
            roles & PX_ROLE_ACCEPTOR ? 'a' : '-', roles & PX_ROLE_LEARNER ? 'l' : '-',
            nd->up ? "up" : "down");
    if (nd->up) {
        uint16_t l = px_node_leader(nd->px);
        if (px_node_is_leader(nd->px))
            fprintf(out, " leads");
        else if (l < s->n)
            fprintf(out, " follows=%u", l);
        else
            fprintf(out, " follows=-");
    }
    sim_golden_ballot(out, "promised", st->promised);
    fprintf(out, " applied=%" PRIu64 " digest=%016" PRIx64 " requests=%" PRIu64, st->fib.applied,
            st->fib.digest, st->fib.requests);
    if (st->truncated > 0)
        fprintf(out, " truncated=%" PRIu64, st->truncated);
    fprintf(out, "\n");
}

static bool sim_golden_next(const struct px_value *a, const struct px_value *b)
{
    if (a->client_id == 0 || b->client_id == 0)
        return a->client_id == 0 && b->client_id == 0;
    return a->client_id == b->client_id && b->seq == a->seq + 1;
}

/* End of the run of decided instances starting at i: consecutive instances holding no-ops,
 * or one client's consecutive seqs. */
static size_t sim_golden_run(const struct sim *s, size_t i)
{
    size_t j = i;
    while (j + 1 < s->inst_cap && s->inst[j + 1].chosen &&
           sim_golden_next(&s->inst[j].value, &s->inst[j + 1].value))
        j++;
    return j;
}

/* The decided log, one line per run, or one line in all past SIM_GOLDEN_RUNS_MAX runs. */
static void sim_golden_log(const struct sim *s, FILE *out)
{
    size_t runs = 0, lo = 0, hi = 0, requests = 0, noops = 0;
    for (size_t i = 1; i < s->inst_cap; i++) {
        if (!s->inst[i].chosen)
            continue;
        lo = lo == 0 ? i : lo;
        hi = i;
        requests += s->inst[i].value.client_id != 0;
        noops += s->inst[i].value.client_id == 0;
        runs += i == 1 || !s->inst[i - 1].chosen ||
                !sim_golden_next(&s->inst[i - 1].value, &s->inst[i].value);
    }
    if (runs > SIM_GOLDEN_RUNS_MAX) {
        fprintf(out, "decided %zu..%zu: %zu requests, %zu no-ops, in %zu runs\n", lo, hi, requests,
                noops, runs);
        return;
    }
    for (size_t i = 1; i < s->inst_cap; i++) {
        if (!s->inst[i].chosen)
            continue;
        size_t j = sim_golden_run(s, i);
        const struct px_value *a = &s->inst[i].value, *b = &s->inst[j].value;
        fprintf(out, "decided %zu", i);
        if (j > i)
            fprintf(out, "..%zu", j);
        if (a->client_id == 0)
            fprintf(out, ": noop\n");
        else if (j > i)
            fprintf(out, ": client=%u seq=%u..%u\n", a->client_id, a->seq, b->seq);
        else
            fprintf(out, ": client=%u seq=%u\n", a->client_id, a->seq);
        i = j;
    }
}

void sim_golden_summary(const struct sim *s, FILE *out)
{
    fprintf(out, "t=%" PRIu64 " rounds submitted=%u applied=%u\n", s->now, s->submitted, s->done);
    for (uint16_t j = 0; j < s->n; j++)
        sim_golden_node(s, j, out);
    sim_golden_log(s, out);
    fprintf(out, "faults:");
    bool any = false;
    for (int k = 0; k < SIM_F_COUNT; k++) {
        if (s->faults[k] == 0)
            continue;
        fprintf(out, " ");
        for (const char *c = sim_fault_names[k]; *c; c++)
            fputc(*c == ' ' ? '-' : *c, out);
        fprintf(out, "=%" PRIu64, s->faults[k]);
        any = true;
    }
    fprintf(out, "%s\n", any ? "" : " none");
}

/* Start of line k (0-based) of text, or NULL past the end; *len without the newline. */
static const char *sim_golden_line(const char *text, size_t k, size_t *len)
{
    const char *p = text;
    for (size_t i = 0; i < k && p != NULL; i++) {
        p = strchr(p, '\n');
        p = (p == NULL || p[1] == '\0') ? NULL : p + 1;
    }
    if (p == NULL || *p == '\0')
        return NULL;
    const char *nl = strchr(p, '\n');
    *len = nl ? (size_t)(nl - p) : strlen(p);
    return p;
}

static size_t sim_golden_lines(const char *text)
{
    size_t n = 0, len = 0;
    while (sim_golden_line(text, n, &len) != NULL)
        n++;
    return n;
}

static bool sim_golden_same(const char *want, size_t wi, const char *got, size_t gi)
{
    size_t wl = 0, gl = 0;
    const char *w = sim_golden_line(want, wi, &wl), *g = sim_golden_line(got, gi, &gl);
    return w != NULL && g != NULL && wl == gl && memcmp(w, g, wl) == 0;
}

/* Prints lines [from, to) of text, each after mark, at most SIM_GOLDEN_SHOWN of them. */
static void sim_golden_print(const char *text, size_t from, size_t to, char mark)
{
    size_t len = 0;
    for (size_t i = from; i < to && i < from + SIM_GOLDEN_SHOWN; i++)
        fprintf(stderr, "%c%.*s\n", mark, (int)len, sim_golden_line(text, i, &len));
}

/* A unified-diff-like hunk around the first difference: the common lines before it as context,
 * then the differing block (common head and tail trimmed), expected lines '-', got lines '+'. */
int sim_golden_compare(const char *path, const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return 0;
    size_t nw = sim_golden_lines(want), ng = sim_golden_lines(got), k = 0, tail = 0;
    while (k < nw && k < ng && sim_golden_same(want, k, got, k))
        k++;
    while (tail < nw - k && tail < ng - k &&
           sim_golden_same(want, nw - 1 - tail, got, ng - 1 - tail))
        tail++;
    size_t from = k > SIM_GOLDEN_CONTEXT ? k - SIM_GOLDEN_CONTEXT : 0;
    fprintf(stderr, "%s: the run differs from its golden trace (after '-- expect --')\n", path);
    fprintf(stderr, "--- expected\n+++ got\n@@ trace line %zu @@\n", k + 1);
    sim_golden_print(want, from, k, ' ');
    sim_golden_print(want, k, nw - tail, '-');
    sim_golden_print(got, k, ng - tail, '+');
    sim_golden_print(want, nw - tail,
                     nw - tail + (tail < SIM_GOLDEN_CONTEXT ? tail : SIM_GOLDEN_CONTEXT), ' ');
    fprintf(stderr,
            "%s: if the change is intended: px_sim --script %s --rewrite, review the diff\n", path,
            path);
    return -1;
}

int sim_golden_rewrite(const char *path, long script_bytes, const char *got)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    char *head = malloc((size_t)script_bytes + 1);
    size_t n = head ? fread(head, 1, (size_t)script_bytes, f) : 0;
    fclose(f);
    if (head == NULL || n != (size_t)script_bytes) {
        fprintf(stderr, "%s: cannot read the script back\n", path);
        free(head);
        return -1;
    }
    char tmp[4096];
    int w = snprintf(tmp, sizeof(tmp), "%s.rewrite", path);
    FILE *o = w > 0 && (size_t)w < sizeof(tmp) ? fopen(tmp, "w") : NULL;
    if (o == NULL) {
        fprintf(stderr, "%s: cannot create %s: %s\n", path, tmp, strerror(errno));
        free(head);
        return -1;
    }
    bool nl = n == 0 || head[n - 1] == '\n';
    int rc = fwrite(head, 1, n, o) == n ? 0 : -1;
    if (rc == 0 && fprintf(o, "%s%s%s", nl ? "" : "\n", sim_golden_marker, got) < 0)
        rc = -1;
    free(head);
    if (fclose(o) != 0 || rc != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "%s: cannot write the golden trace: %s\n", path, strerror(errno));
        (void)remove(tmp);
        return -1;
    }
    return 0;
}
