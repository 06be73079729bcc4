/* failover.c: --failover-every MS times leader fail-over. Every MS ms of the drive the leader
 * gets SIGKILL (the failure detector restarts it) or, with --failover-signal stop, SIGSTOP
 * for MS / 2 and then SIGCONT. For every event it records the time from the signal to the
 * first decision the client sees from another leader, and the worst commit latency among the rounds
 * decided from the event until the next one; it also counts decisions per millisecond of the
 * drive, so the report can show them around one event (bench/failover draws them). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "supervisor/report.h"
#include "supervisor/sup.h"

#define NS_PER_MS 1000000ull

int sup_failover_init(struct sup *s)
{
    struct sup_failover *f = &s->failover;
    f->stopped = -1;
    if (s->cfg->failover_ms == 0)
        return 0;
    f->events = calloc(SUP_FAILOVER_EVENTS_MAX, sizeof(*f->events));
    f->per_ms = calloc(SUP_FAILOVER_MS_MAX, sizeof(*f->per_ms));
    if (f->events == NULL || f->per_ms == NULL)
        return -ENOMEM;
    return 0;
}

void sup_failover_free(struct sup *s)
{
    free(s->failover.to_decision_us);
    free(s->failover.worst_commit_us);
    s->failover.to_decision_us = s->failover.worst_commit_us = NULL;
    free(s->failover.events);
    free(s->failover.per_ms);
    s->failover.events = NULL;
    s->failover.per_ms = NULL;
}

void sup_failover_start(struct sup *s, uint64_t now_ns)
{
    struct sup_failover *f = &s->failover;
    f->start_ns = now_ns;
    f->next_ns = now_ns + s->cfg->failover_ms * NS_PER_MS;
}

/* SIGCONT for a stopped leader whose time is up (or at the end: `all`). */
static void resume_stopped(struct sup *s, uint64_t now_ns, bool all)
{
    struct sup_failover *f = &s->failover;
    if (f->stopped < 0 || (!all && now_ns < f->cont_ns))
        return;
    pid_t pid = s->members.procs[f->stopped].pid;
    if (pid > 0 && pid == f->stopped_pid && kill(pid, SIGCONT) != 0)
        LOG(LOG_ERROR, "failover: SIGCONT node %d: %s", f->stopped, strerror(errno));
    f->stopped = -1;
}

void sup_failover_step(struct sup *s, uint64_t now_ns)
{
    struct sup_failover *f = &s->failover;
    if (f->events == NULL)
        return;
    resume_stopped(s, now_ns, false);
    if (now_ns < f->next_ns || f->stopped >= 0 || f->len == SUP_FAILOVER_EVENTS_MAX)
        return;
    /* Steady state only: a leader that is up and loaded, every node back from the last kill. */
    uint16_t l = sup_leader(s);
    if (l == PX_NODE_NONE || !sup_settled(s, l))
        return;
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (!sup_settled(s, i))
            return;
    struct sup_proc *p = &s->members.procs[l];
    bool stop = s->cfg->failover_stop;
    if (kill(p->pid, stop ? SIGSTOP : SIGKILL) != 0)
        return;
    LOG(LOG_INFO, "failover: %s leader %u", stop ? "SIGSTOP" : "SIGKILL", l);
    f->events[f->len++] =
        (struct sup_failover_event){.at_ns = now_ns, .victim = l, .victim_pid = p->pid};
    if (stop) {
        f->stopped = l;
        f->stopped_pid = p->pid;
        f->cont_ns = now_ns + s->cfg->failover_ms * NS_PER_MS / 2;
    } else {
        p->killing = true;
    }
    f->next_ns = now_ns + s->cfg->failover_ms * NS_PER_MS;
}

void sup_failover_decided(struct sup *s, uint64_t now_ns, uint16_t from, uint64_t latency_ns)
{
    struct sup_failover *f = &s->failover;
    if (f->events == NULL || now_ns < f->start_ns)
        return;
    uint64_t ms = (now_ns - f->start_ns) / NS_PER_MS;
    if (ms < SUP_FAILOVER_MS_MAX)
        f->per_ms[ms]++;
    if (f->len == 0)
        return;
    struct sup_failover_event *e = &f->events[f->len - 1];
    /* Replies of the victim still in the rings report decisions it made before the signal:
     * the fail-over ends with the first decision of another leader (or of the victim's next
     * incarnation). */
    if (e->first_ns == 0 && (from != e->victim || s->members.procs[e->victim].pid != e->victim_pid))
        e->first_ns = now_ns;
    if (latency_ns > e->worst_ns)
        e->worst_ns = latency_ns;
}

void sup_failover_finish(struct sup *s)
{
    resume_stopped(s, 0, true);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of the sorted v[0..n). */
static double quantile(const double *v, uint32_t n, double q)
{
    if (n == 0)
        return 0;
    uint32_t k = (uint32_t)(q * (double)n + 0.999999);
    return v[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

void sup_failover_report(struct sup *s, struct report_failover *out)
{
    struct sup_failover *f = &s->failover;
    memset(out, 0, sizeof(*out));
    if (f->events == NULL)
        return;
    out->on = true;
    out->signal = s->cfg->failover_stop ? "stop" : "kill";
    out->every_ms = s->cfg->failover_ms;
    out->events = f->len;
    double *to = calloc(f->len + 1, sizeof(double));
    double *worst = calloc(f->len + 1, sizeof(double));
    double *sorted = calloc(f->len + 1, sizeof(double));
    if (to == NULL || worst == NULL || sorted == NULL) {
        free(to);
        free(worst);
        free(sorted);
        out->events = 0; /* out of memory at the very end: the section says no events */
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < f->len; i++) {
        const struct sup_failover_event *e = &f->events[i];
        to[i] = e->first_ns ? (double)(e->first_ns - e->at_ns) / 1e3 : -1;
        worst[i] = (double)e->worst_ns / 1e3;
        if (e->first_ns)
            sorted[k++] = to[i];
    }
    out->answered = k;
    out->hang_ms = (uint32_t)(sup_hang_ns(s->cfg) / NS_PER_MS);
    qsort(sorted, k, sizeof(double), cmp_double);
    out->to_decision_p50 = quantile(sorted, k, 0.50);
    out->to_decision_p99 = quantile(sorted, k, 0.99);
    out->to_decision_max = k ? sorted[k - 1] : 0;
    /* the event drawn: the first whose time to decision is the median */
    for (uint32_t i = 0; i < f->len; i++)
        if (to[i] == out->to_decision_p50) {
            out->plot_event = i;
            break;
        }
    memcpy(sorted, worst, f->len * sizeof(double));
    qsort(sorted, f->len, sizeof(double), cmp_double);
    out->worst_commit_p50 = quantile(sorted, f->len, 0.50);
    out->worst_commit_p99 = quantile(sorted, f->len, 0.99);
    out->worst_commit_max = f->len ? sorted[f->len - 1] : 0;
    free(sorted);
    if (f->len > 0) {
        uint64_t at_ms = (f->events[out->plot_event].at_ns - f->start_ns) / NS_PER_MS;
        for (uint32_t i = 0; i < REPORT_PLOT_MS; i++) {
            int64_t ms = (int64_t)at_ms - REPORT_PLOT_BEFORE_MS + (int64_t)i;
            if (ms >= 0 && ms < (int64_t)SUP_FAILOVER_MS_MAX)
                out->plot[i] = f->per_ms[ms];
        }
    }
    f->to_decision_us = to;
    f->worst_commit_us = worst;
    out->to_decision_us = to;
    out->worst_commit_us = worst;
}
