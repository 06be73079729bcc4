/* record.c: the client's own durable record, one row per run in the registry's `runs` table
 * (store.h: struct store_run). The expectation of a run comes from here, never from the state
 * machine: the last run's row says which global rounds were seen decided and the highest that
 * may have been submitted; the rounds in between are in doubt and are resolved (resubmitted
 * with the same identity, exactly-once makes it harmless) before the new rounds. With the shm
 * store nothing outlives the supervisor, so every run starts from round 0 and the record lives
 * in memory only. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "store/store.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A failed write of the record ends the run: without it the next run could not tell which
 * rounds are in doubt. */
static int record_failed(struct sup *s)
{
    fprintf(stderr, "paxos-shm: %s\n", store_registry_errmsg(s->env.registry));
    s->fatal = EXIT_RUNTIME;
    return -1;
}

int sup_record_begin(struct sup *s)
{
    struct sup_record *rec = &s->record;
    struct store_run last = {0};
    rec->run = (struct store_run){.started_ms = wall_ms(), .rounds = s->cfg->rounds};
    if (s->env.registry == NULL)
        return 0; /* shm store: a fresh pool */
    int rc = store_registry_run_last(s->env.registry, &last);
    if (rc != 0 && rc != -ENOENT)
        return record_failed(s);
    struct client_record was = {.decided = last.decided, .submitted = last.submitted};
    struct client_resume from = client_resume_of(&was);
    rec->run.decided = last.decided;
    rec->run.submitted = last.submitted;
    rec->run.in_doubt = from.in_doubt;
    rec->run.base = from.base;
    if (s->cfg->rounds > CLIENT_GLOBAL_ROUNDS_MAX - rec->run.base) {
        fprintf(stderr,
                "paxos-shm: --rounds %" PRIu64 ": the data directory holds %" PRIu64
                " rounds; at most %" PRIu64 " fit\n",
                s->cfg->rounds, rec->run.base, CLIENT_GLOBAL_ROUNDS_MAX);
        s->fatal = EXIT_RUNTIME;
        return -1;
    }
    if (store_registry_run_begin(s->env.registry, &rec->run) != 0)
        return record_failed(s);
    /* identity.c stamped this id into the stores as the run's epoch */
    PX_ASSERT(s->env.epoch == 0 || rec->run.id == s->env.epoch);
    return 0;
}

/* Copies what the client knows into the row. */
static void record_take(struct sup *s)
{
    const struct client *c = s->drive.client;
    struct store_run *run = &s->record.run;
    struct client_record r = {.decided = run->decided, .submitted = run->submitted};
    client_record_take(&r, c);
    run->decided = r.decided;
    run->submitted = r.submitted;
    if (!s->record.resolving)
        run->done = c->done;
}

int sup_record_hwm(struct sup *s, uint64_t hwm)
{
    PX_ASSERT(hwm > s->drive.client->hwm);
    if (s->env.registry != NULL) {
        record_take(s);
        s->record.run.submitted = hwm;
        if (store_registry_run_update(s->env.registry, &s->record.run) != 0)
            return record_failed(s);
    }
    client_hwm_durable(s->drive.client, hwm);
    return 0;
}

int sup_record_lib(struct sup *s, uint64_t submitted, uint64_t decided)
{
    struct store_run *run = &s->record.run;
    PX_ASSERT(submitted >= run->submitted && decided <= submitted);
    if (s->env.registry == NULL)
        return 0;
    run->submitted = submitted;
    if (decided > run->decided)
        run->decided = decided;
    if (store_registry_run_update(s->env.registry, run) != 0)
        return record_failed(s);
    return 0;
}

int sup_record_resolved(struct sup *s)
{
    PX_ASSERT(client_finished(s->drive.client));
    PX_ASSERT(client_decided_prefix(s->drive.client) == s->record.run.base);
    if (s->env.registry == NULL)
        return 0;
    record_take(s);
    if (store_registry_run_update(s->env.registry, &s->record.run) != 0)
        return record_failed(s);
    return 0;
}

void sup_record_end(struct sup *s, const char *outcome)
{
    struct store_run *run = &s->record.run;
    if (s->env.registry == NULL || run->id == 0)
        return;
    record_take(s);
    run->ended_ms = wall_ms();
    snprintf(run->outcome, sizeof(run->outcome), "%s", outcome);
    if (store_registry_run_update(s->env.registry, run) != 0)
        (void)record_failed(s);
}
