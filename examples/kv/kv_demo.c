/* kv_demo: runs the key-value store of kv.h on a pool of 5 nodes and checks every result
 * against a model of its own. Commands on one key are serialized (the next is submitted once
 * the last completed), so the model knows each result beforehand, whatever the log order of
 * commands on different keys. Checked: every status and result, that every completion runs
 * once with a log index above the key's previous one, a final get of every key, the learners'
 * digest (pxs_report.sm_digest) against the model's, and that the pool applied exactly as many
 * commands as were submitted. Exit 0 only when pxs_close verified and nothing disagreed.
 *
 *   kv_demo [--commands N] [--chaos K] [--value-bytes B] [--keys K] [--seed S]
 *           [--store shm|sqlite] [--window W] */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

struct model_key {
    int present, busy;
    uint8_t *val;
    size_t vlen;
    uint64_t last_index;
};

struct op {
    int kind; /* enum kv_op */
    uint32_t key;
    uint8_t *val; /* put, cas: the new value */
    size_t vlen;
    int cas_absent; /* cas: expect no value */
    uint8_t *expected;
    size_t elen;
    int completions;
};

static struct model_key *keys;
static uint32_t nkeys;
static unsigned long disagreements, lost, inflight, completed;
static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Key k: its number (u32 LE, zero bytes included) and k % 5 more bytes. */
static size_t key_bytes(uint32_t k, uint8_t *out)
{
    size_t n = 4 + k % 5;
    for (size_t i = 0; i < n; i++)
        out[i] = i < 4 ? (uint8_t)(k >> (8 * i)) : (uint8_t)(i & 1 ? 0xff : 0);
    return n;
}

static void disagree(const struct op *op, const char *what)
{
    disagreements++;
    if (disagreements <= 10)
        fprintf(stderr, "kv_demo: op %d on key %" PRIu32 ": %s\n", op->kind, op->key, what);
}

/* Checks an outcome against the model, then applies op to the model. */
static void check(struct op *op, const struct pxs_outcome *o)
{
    struct model_key *m = &keys[op->key];
    if (++op->completions != 1) {
        disagree(op, "completion called again");
        return;
    }
    inflight--;
    completed++;
    m->busy = 0;
    if (o->err != 0) {
        disagree(op, pxs_strerror(o->err));
        return;
    }
    if (o->index <= m->last_index)
        disagree(op, "log index not above the key's previous command's");
    m->last_index = o->index;
    int status = KV_OK;
    const uint8_t *want = NULL;
    size_t want_len = 0;
    uint8_t summary[KV_SUMMARY_BYTES];
    switch (op->kind) {
    case KV_PUT:
        break;
    case KV_DEL:
        status = m->present ? KV_OK : KV_NOT_FOUND;
        break;
    case KV_GET:
        if (!m->present) {
            status = KV_NOT_FOUND;
        } else if (m->vlen > KV_RESULT_VALUE_MAX) {
            uint64_t h = kv_hash(m->val, m->vlen);
            for (int i = 0; i < 8; i++) {
                summary[i] = (uint8_t)((uint64_t)m->vlen >> (8 * i));
                summary[8 + i] = (uint8_t)(h >> (8 * i));
            }
            status = KV_SUMMARY;
            want = summary;
            want_len = sizeof summary;
        } else {
            want = m->val;
            want_len = m->vlen;
        }
        break;
    case KV_CAS:
        if (op->cas_absent)
            status = m->present ? KV_CAS_MISMATCH : KV_OK;
        else if (!m->present)
            status = KV_NOT_FOUND;
        else if (m->vlen != op->elen || memcmp(m->val, op->expected, op->elen) != 0)
            status = KV_CAS_MISMATCH;
        break;
    }
    if (o->result_lost) {
        lost++; /* applied once all the same: the model goes on */
    } else if (o->status != status) {
        disagree(op, "status differs from the model's");
    } else if (o->result_len != want_len ||
               (want_len > 0 && memcmp(o->result, want, want_len) != 0)) {
        disagree(op, "result differs from the model's");
    }
    if (op->kind == KV_PUT || (op->kind == KV_CAS && status == KV_OK)) {
        free(m->val);
        m->val = op->val;
        m->vlen = op->vlen;
        m->present = 1;
        op->val = NULL;
    } else if (op->kind == KV_DEL) {
        free(m->val);
        m->val = NULL;
        m->vlen = 0;
        m->present = 0;
    }
    free(op->val);
    free(op->expected);
    op->val = op->expected = NULL;
}

static void done(void *arg, const struct pxs_outcome *o)
{
    check(arg, o);
}

static uint8_t *random_value(size_t len)
{
    uint8_t *v = malloc(len ? len : 1);
    if (!v) {
        perror("kv_demo");
        exit(3);
    }
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = rng();
        for (size_t j = 0; j < 8 && i + j < len; j++)
            v[i + j] = (uint8_t)(x >> (8 * j));
    }
    return v;
}

/* A random command on key k into op; returns its encoding (malloc'd), *len its length. */
static uint8_t *make_command(struct op *op, uint32_t k, size_t value_bytes, size_t *len)
{
    struct model_key *m = &keys[k];
    uint8_t key[8];
    size_t klen = key_bytes(k, key);
    unsigned r = (unsigned)(rng() % 100);
    memset(op, 0, sizeof *op);
    op->key = k;
    op->kind = r < 40 ? KV_PUT : r < 65 ? KV_GET : r < 85 ? KV_CAS : KV_DEL;
    if (op->kind == KV_PUT || op->kind == KV_CAS) {
        op->vlen = value_bytes ? value_bytes : (size_t)(rng() % 65);
        op->val = random_value(op->vlen);
    }
    uint8_t *cmd;
    switch (op->kind) {
    case KV_PUT:
        cmd = malloc(kv_put_size(klen, op->vlen));
        *len = cmd ? kv_encode_put(cmd, key, klen, op->val, op->vlen) : 0;
        break;
    case KV_CAS:
        /* Half the time the value the key holds (swaps), else absent or a wrong value. */
        if (rng() % 2 == 0) {
            op->cas_absent = !m->present;
            op->elen = m->vlen;
            op->expected = random_value(op->elen);
            if (m->present)
                memcpy(op->expected, m->val, m->vlen);
        } else if (rng() % 2 == 0) {
            op->cas_absent = 1;
        } else {
            op->elen = m->present && m->vlen > 0 ? m->vlen : 1;
            op->expected = random_value(op->elen);
            if (m->present && m->vlen > 0) {
                memcpy(op->expected, m->val, m->vlen);
                op->expected[m->vlen / 2] ^= 0x5a; /* one byte off */
            }
        }
        cmd = malloc(kv_cas_size(klen, op->elen, op->vlen));
        *len = cmd ? kv_encode_cas(cmd, key, klen, op->cas_absent ? NULL : op->expected, op->elen,
                                   op->val, op->vlen)
                   : 0;
        break;
    default:
        cmd = malloc(kv_key_cmd_size(klen));
        *len = !cmd                 ? 0
               : op->kind == KV_GET ? kv_encode_get(cmd, key, klen)
                                    : kv_encode_del(cmd, key, klen);
        break;
    }
    if (!cmd) {
        perror("kv_demo");
        exit(3);
    }
    return cmd;
}

static int run_call(struct pxs_pool *p, struct op *op, const uint8_t *cmd, size_t len)
{
    static uint8_t result[PXS_RESULT_MAX];
    struct pxs_outcome out;
    keys[op->key].busy = 1;
    inflight++;
    int rc = pxs_call(p, cmd, len, result, sizeof result, &out);
    if (rc != 0) {
        fprintf(stderr, "kv_demo: pxs_call: %s\n", pxs_strerror(rc));
        return rc;
    }
    check(op, &out);
    return 0;
}

static unsigned long arg_ul(const char *flag, const char *v, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v ? v : "", &end, 10);
    if (!v || errno || *end || end == v || x > max) {
        fprintf(stderr, "kv_demo: %s needs a number up to %lu\n", flag, max);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    unsigned long commands = 0, chaos = 0, value_bytes = 0, window = 0, seed = 1;
    unsigned long key_count = 0;
    enum pxs_store store = PXS_STORE_SQLITE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--commands") == 0)
            commands = arg_ul(a, v, 100000000);
        else if (strcmp(a, "--chaos") == 0)
            chaos = arg_ul(a, v, 1000);
        else if (strcmp(a, "--value-bytes") == 0)
            value_bytes = arg_ul(a, v, PXS_COMMAND_MAX_LIMIT / 2 - 4096);
        else if (strcmp(a, "--keys") == 0)
            key_count = arg_ul(a, v, 1000000);
        else if (strcmp(a, "--seed") == 0)
            seed = arg_ul(a, v, 0xffffffffUL);
        else if (strcmp(a, "--window") == 0)
            window = arg_ul(a, v, 1024);
        else if (strcmp(a, "--store") == 0 && v && strcmp(v, "shm") == 0)
            store = PXS_STORE_SHM;
        else if (strcmp(a, "--store") == 0 && v && strcmp(v, "sqlite") == 0)
            store = PXS_STORE_SQLITE;
        else {
            fprintf(stderr, "usage: kv_demo [--commands N] [--chaos K] [--value-bytes B] "
                            "[--keys K] [--seed S] [--store shm|sqlite] [--window W]\n");
            return 2;
        }
        i++;
    }
    int big = value_bytes > 65536;
    if (commands == 0)
        commands = big ? 100 : 2000;
    if (key_count == 0)
        key_count = big ? 8 : 64;
    nkeys = (uint32_t)key_count;
    rng_state = seed;
    keys = calloc(nkeys, sizeof *keys);
    struct op *ops = calloc(commands + nkeys, sizeof *ops);
    struct kv *kv = kv_new();
    if (!keys || !ops || !kv) {
        perror("kv_demo");
        return 3;
    }

    struct pxs_state_machine sm;
    kv_state_machine(kv, &sm);
    struct pxs_config c;
    pxs_config_init(&c);
    c.nodes = 5;
    c.chaos_kills = (uint32_t)chaos;
    c.chaos_every = (uint32_t)(commands / (chaos + 1)); /* spread over the run */
    c.seed = seed;
    c.store = store;
    c.quiet = 1;
    c.timeout_s = 300;
    if (window)
        c.window = (uint32_t)window;
    /* The longest command: a cas carries the expected and the new value. */
    c.command_max =
        (uint32_t)kv_cas_size(8, value_bytes ? value_bytes : 64, value_bytes ? value_bytes : 64);
    if (c.command_max < PXS_COMMAND_MAX_DEFAULT)
        c.command_max = PXS_COMMAND_MAX_DEFAULT;
    struct pxs_pool *p;
    int rc = pxs_open(&c, &sm, &p);
    if (rc != 0) {
        fprintf(stderr, "kv_demo: pxs_open: %s\n", pxs_strerror(rc));
        return rc == -EINVAL ? 2 : 3;
    }

    unsigned long submitted = 0, called = 0, n = 0;
    int failed = 0;
    while (n < commands && !failed) {
        uint32_t k = (uint32_t)(rng() % nkeys), tries = 0;
        while (keys[k].busy && tries++ < nkeys)
            k = (k + 1) % nkeys;
        if (keys[k].busy) { /* every key has a command in flight */
            failed = pxs_poll(p, -1) < 0;
            continue;
        }
        struct op *op = &ops[n];
        size_t len;
        uint8_t *cmd = make_command(op, k, value_bytes, &len);
        if (n % 10 == 9) { /* every tenth command waits for its result */
            failed = run_call(p, op, cmd, len) != 0;
            called++;
        } else {
            while ((rc = pxs_submit(p, cmd, len, done, op)) == -EAGAIN)
                if (pxs_poll(p, -1) < 0)
                    break;
            if (rc != 0) {
                fprintf(stderr, "kv_demo: pxs_submit: %s\n", pxs_strerror(rc));
                failed = 1;
            } else {
                keys[k].busy = 1;
                inflight++;
                submitted++;
            }
        }
        free(cmd);
        n++;
    }
    while (inflight > 0 && !failed)
        failed = pxs_poll(p, 1000) < 0;
    /* A get of every key, checked against the model like the rest. */
    for (uint32_t k = 0; k < nkeys && !failed; k++) {
        struct op *op = &ops[commands + k];
        uint8_t key[8], cmd[16];
        size_t klen = key_bytes(k, key);
        memset(op, 0, sizeof *op);
        op->kind = KV_GET;
        op->key = k;
        failed = run_call(p, op, cmd, kv_encode_get(cmd, key, klen)) != 0;
        called++;
    }
    uint64_t model_digest = 0, model_count = 0;
    for (uint32_t k = 0; k < nkeys; k++) {
        if (keys[k].present) {
            uint8_t key[8];
            size_t klen = key_bytes(k, key);
            model_digest += kv_entry_digest(key, klen, keys[k].val, keys[k].vlen);
            model_count++;
        }
    }
    model_digest += model_count;

    struct pxs_report r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    int verdict = pxs_close(p, &r);
    if (failed)
        disagreements++;
    if (verdict == PXS_EXIT_VERIFIED && r.sm_digest != model_digest) {
        fprintf(stderr, "kv_demo: learners' digest %016" PRIx64 ", the model's %016" PRIx64 "\n",
                r.sm_digest, model_digest);
        disagreements++;
    }
    if (verdict == PXS_EXIT_VERIFIED && r.applied != submitted + called) {
        fprintf(stderr, "kv_demo: %" PRIu64 " commands applied, %lu submitted\n", r.applied,
                submitted + called);
        disagreements++;
    }
    printf("kv_demo: %lu commands (%lu submitted, %lu called), %lu completed, %lu results lost, "
           "%" PRIu32 " restarts, %" PRIu32 " chaos kills, pxs_close %d, %lu disagreements\n",
           submitted + called, submitted, called, completed, lost, r.restarts, r.chaos_kills,
           verdict, disagreements);
    for (uint32_t k = 0; k < nkeys; k++)
        free(keys[k].val);
    free(keys);
    free(ops);
    kv_free(kv);
    return verdict == PXS_EXIT_VERIFIED && disagreements == 0 ? 0 : verdict ? verdict : 1;
}
