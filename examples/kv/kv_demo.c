/* kv_demo: runs the key-value store of kv.h on a pool and checks every result against a model
 * of its own. Commands on one key are serialized (the next is submitted once the last
 * completed), so the model knows each result beforehand, whatever the log order of commands on
 * different keys. Checked: every status and result, that every completion runs once with a log
 * index above the key's previous one, a final get of every key, the learners' digest
 * (pxs_report.sm_digest) against the model's, and that the pool applied exactly as many
 * commands as were submitted. Exit 0 only when pxs_close verified and nothing disagreed.
 *
 * With --data-dir DIR the model is saved at the end in a file of its own (DIR.model unless
 * --model FILE), and --continue loads it: a second run on DIR starts from the first run's state
 * and checks it. A run stopped by a signal (exit 128 + N) saves its model too: a command it had
 * in flight (cancelled, applied or not) leaves its key with two possible values, and the next
 * run's first command on that key is a get that says which.
 *
 *   kv_demo [--commands N] [--chaos K] [--chaos-every C] [--value-bytes B] [--value-max B]
 *           [--big-every N] [--keys K] [--seed S] [--store shm|sqlite] [--window W]
 *           [--nodes N] [--proposers P] [--acceptors A] [--learners L] [--timeout S]
 *           [--data-dir DIR [--model FILE] [--continue]] [--lost-results-ok]
 *
 * A result lost (pxs_outcome.result_lost) is allowed where the header allows it, with a learner
 * that ended: lost results in a run with no node restarted disagree unless --lost-results-ok. */
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
    /* A command cancelled at a signal may have been applied: the key holds val or alt. */
    int uncertain, alt_present;
    uint8_t *alt_val;
    size_t alt_vlen;
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
static unsigned long disagreements, lost, inflight, completed, cancelled, resolved, index0;
/* Commands applied by the pool's earlier runs and this one: applied_lo surely, applied_hi at
 * most (cancelled commands may or may not have been applied). */
static uint64_t applied_lo, applied_hi;
static int stopping; /* the pool failed or was stopped: cancellations are expected */
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

/* What a get of a key holding (present, val, vlen) returns: its status, *want its result. */
static int get_expect(int present, const uint8_t *val, size_t vlen, const uint8_t **want,
                      size_t *want_len, uint8_t summary[KV_SUMMARY_BYTES])
{
    *want = NULL;
    *want_len = 0;
    if (!present)
        return KV_NOT_FOUND;
    if (vlen > KV_RESULT_VALUE_MAX) {
        uint64_t h = kv_hash(val, vlen);
        for (int i = 0; i < 8; i++) {
            summary[i] = (uint8_t)((uint64_t)vlen >> (8 * i));
            summary[8 + i] = (uint8_t)(h >> (8 * i));
        }
        *want = summary;
        *want_len = KV_SUMMARY_BYTES;
        return KV_SUMMARY;
    }
    *want = val;
    *want_len = vlen;
    return KV_OK;
}

static int outcome_is(const struct pxs_outcome *o, int status, const uint8_t *want, size_t len)
{
    return o->status == status && o->result_len == len &&
           (len == 0 || memcmp(o->result, want, len) == 0);
}

/* A cancelled command on m (applied or not): the key may now hold what op makes of it. */
static void make_uncertain(struct model_key *m, struct op *op, int status)
{
    applied_hi++;
    cancelled++;
    int changes = op->kind == KV_PUT || (op->kind == KV_CAS && status == KV_OK) ||
                  (op->kind == KV_DEL && m->present);
    if (!changes)
        return;
    m->uncertain = 1;
    m->alt_present = op->kind != KV_DEL;
    m->alt_val = op->kind == KV_DEL ? NULL : op->val;
    m->alt_vlen = op->kind == KV_DEL ? 0 : op->vlen;
    if (op->kind != KV_DEL)
        op->val = NULL;
}

/* A get answered for an uncertain key: it holds val or alt_val, the outcome says which. */
static void resolve(struct op *op, struct model_key *m, const struct pxs_outcome *o)
{
    uint8_t summary[KV_SUMMARY_BYTES];
    const uint8_t *want;
    size_t want_len;
    int status = get_expect(m->present, m->val, m->vlen, &want, &want_len, summary);
    if (o->result_lost)
        return; /* still uncertain: the next command on the key is a get again */
    resolved++;
    if (!outcome_is(o, status, want, want_len)) {
        status = get_expect(m->alt_present, m->alt_val, m->alt_vlen, &want, &want_len, summary);
        if (!outcome_is(o, status, want, want_len)) {
            disagree(op, "get of a key after a cancelled command: neither value");
        } else { /* the cancelled command was applied */
            free(m->val);
            m->val = m->alt_val;
            m->vlen = m->alt_vlen;
            m->present = m->alt_present;
            m->alt_val = NULL;
        }
    }
    free(m->alt_val);
    m->alt_val = NULL;
    m->alt_vlen = 0;
    m->uncertain = 0;
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
        status = get_expect(m->present, m->val, m->vlen, &want, &want_len, summary);
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
    if (o->err == -ECANCELED && stopping) {
        make_uncertain(m, op, status);
    } else if (o->err != 0) {
        disagree(op, pxs_strerror(o->err));
        return;
    } else {
        applied_lo++;
        applied_hi++;
        if (o->index == 0) {
            index0++; /* answered from an earlier application of it (the header allows it) */
        } else {
            if (o->index <= m->last_index)
                disagree(op, "log index not above the key's previous command's");
            m->last_index = o->index;
        }
        if (m->uncertain) {
            if (op->kind != KV_GET)
                disagree(op, "a command other than a get on an uncertain key");
            resolve(op, m, o);
        } else if (o->result_lost) {
            if (!o->result_len && !o->result)
                lost++; /* applied once all the same: the model goes on */
            else
                disagree(op, "result_lost with a result");
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
    }
    free(op->val);
    free(op->expected);
    op->val = op->expected = NULL;
}

static void done(void *arg, const struct pxs_outcome *o)
{
    check(arg, o);
}

/* A command that never went out (or whose completion will never come to check): its values. */
static void drop_op(struct op *op)
{
    free(op->val);
    free(op->expected);
    op->val = op->expected = NULL;
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

/* Value lengths: --value-bytes B (every value B), else --value-max B (0 bytes, up to 64 or
 * up to B, log-uniform) and every --big-every'th value 1 MiB; else 0..64 bytes. */
static size_t value_bytes, value_max, big_every, values_made;
static size_t value_cap; /* the longest value the pool's command_max holds in a cas */
#define BIG_VALUE ((size_t)1 << 20)

static size_t value_len_drawn(void);

static size_t value_len(void)
{
    size_t n = value_len_drawn();
    return n > value_cap ? value_cap : n;
}

static size_t value_len_drawn(void)
{
    if (value_bytes)
        return value_bytes;
    if (big_every && ++values_made % big_every == 0)
        return BIG_VALUE;
    if (!value_max)
        return (size_t)(rng() % 65);
    switch (rng() % 4) {
    case 0:
        return 0;
    case 1:
        return (size_t)(rng() % ((value_max < 64 ? value_max : 64) + 1));
    default: {
        unsigned bits = 0;
        while (bits < 40 && ((size_t)1 << (bits + 1)) <= value_max)
            bits++;
        size_t top = (size_t)1 << (unsigned)(rng() % (bits + 1));
        size_t n = (size_t)(rng() % (top + 1));
        return n > value_max ? value_max : n;
    }
    }
}

/* A random command on key k into op; returns its encoding (malloc'd), *len its length. A key
 * whose value is uncertain gets a get, which resolves it. */
static uint8_t *make_command(struct op *op, uint32_t k, size_t *len)
{
    struct model_key *m = &keys[k];
    uint8_t key[8];
    size_t klen = key_bytes(k, key);
    unsigned r = (unsigned)(rng() % 100);
    memset(op, 0, sizeof *op);
    op->key = k;
    op->kind = r < 40 ? KV_PUT : r < 65 ? KV_GET : r < 85 ? KV_CAS : KV_DEL;
    if (m->uncertain)
        op->kind = KV_GET;
    if (op->kind == KV_PUT || op->kind == KV_CAS) {
        op->vlen = value_len();
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
    if (rc == -ESHUTDOWN) { /* the pool stopped: the command may have gone out */
        stopping = 1;
        struct pxs_outcome c = {.err = -ECANCELED, .result_lost = 1};
        check(op, &c);
        return rc;
    }
    if (rc != 0) {
        fprintf(stderr, "kv_demo: pxs_call: %s\n", pxs_strerror(rc));
        drop_op(op);
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

/* --- the model file: what a --continue run starts from ----------------------------------- */
static const char model_magic[8] = {'k', 'v', 'm', 'o', 'd', 'e', 'l', '1'};

static int put64(FILE *f, uint64_t x)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(x >> (8 * i));
    return fwrite(b, 1, 8, f) == 8 ? 0 : -1;
}

static int get64(FILE *f, uint64_t *x)
{
    uint8_t b[8];
    if (fread(b, 1, 8, f) != 8)
        return -1;
    *x = 0;
    for (int i = 0; i < 8; i++)
        *x |= (uint64_t)b[i] << (8 * i);
    return 0;
}

static int put_value(FILE *f, int present, const uint8_t *v, size_t len)
{
    if (put64(f, (uint64_t)present) || put64(f, len))
        return -1;
    return len == 0 || fwrite(v, 1, len, f) == len ? 0 : -1;
}

static int get_value(FILE *f, int *present, uint8_t **v, size_t *len)
{
    uint64_t pr, n;
    if (get64(f, &pr) || get64(f, &n) || n > PXS_COMMAND_MAX_LIMIT)
        return -1;
    *present = pr != 0;
    *len = (size_t)n;
    *v = malloc(n ? n : 1);
    return *v && (n == 0 || fread(*v, 1, n, f) == n) ? 0 : -1;
}

/* Written to FILE.tmp, then renamed over FILE. */
static int save_model(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    int bad = fwrite(model_magic, 1, 8, f) != 8 || put64(f, nkeys) || put64(f, applied_lo) ||
              put64(f, applied_hi) || put64(f, value_cap);
    for (uint32_t k = 0; k < nkeys && !bad; k++) {
        struct model_key *m = &keys[k];
        bad = put64(f, m->last_index) || put64(f, (uint64_t)m->uncertain) ||
              put_value(f, m->present, m->val, m->vlen) ||
              put_value(f, m->alt_present, m->alt_val, m->alt_vlen);
    }
    if (fclose(f) != 0 || bad)
        return -1;
    return rename(tmp, path);
}

/* Replaces nkeys and keys with the model in path; 0, or -1 with a line on stderr. */
static int load_model(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kv_demo: --continue: no model %s\n", path);
        return -1;
    }
    char magic[8];
    uint64_t n, cap = 0;
    int bad = fread(magic, 1, 8, f) != 8 || memcmp(magic, model_magic, 8) != 0 || get64(f, &n) ||
              n == 0 || n > 1000000 || get64(f, &applied_lo) || get64(f, &applied_hi) ||
              get64(f, &cap) || cap > PXS_COMMAND_MAX_LIMIT / 2;
    value_cap = (size_t)cap;
    if (!bad) {
        nkeys = (uint32_t)n;
        keys = calloc(nkeys, sizeof *keys);
        bad = !keys;
    }
    for (uint32_t k = 0; k < nkeys && !bad; k++) {
        struct model_key *m = &keys[k];
        uint64_t u = 0;
        bad = get64(f, &m->last_index) || get64(f, &u) ||
              get_value(f, &m->present, &m->val, &m->vlen) ||
              get_value(f, &m->alt_present, &m->alt_val, &m->alt_vlen);
        m->uncertain = u != 0;
    }
    fclose(f);
    if (bad)
        fprintf(stderr, "kv_demo: --continue: the model %s is not one kv_demo wrote\n", path);
    return bad ? -1 : 0;
}

#define USAGE                                                                                      \
    "usage: kv_demo [--commands N] [--chaos K] [--chaos-every C] [--value-bytes B]\n"              \
    "               [--value-max B] [--big-every N] [--keys K] [--seed S] [--store shm|sqlite]\n"  \
    "               [--window W] [--nodes N] [--proposers P] [--acceptors A] [--learners L]\n"     \
    "               [--timeout S] [--data-dir DIR [--model FILE] [--continue]]\n"                  \
    "               [--lost-results-ok]\n"

int main(int argc, char **argv)
{
    unsigned long commands = 0, chaos = 0, chaos_every = 0, window = 0, seed = 1;
    unsigned long key_count = 0, nodes = 5, proposers = 0, acceptors = 0, learners = 0;
    unsigned long timeout = 300;
    int cont = 0, lost_ok = 0;
    const char *data_dir = NULL, *model = NULL;
    enum pxs_store store = PXS_STORE_SQLITE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--commands") == 0)
            commands = arg_ul(a, v, 100000000);
        else if (strcmp(a, "--chaos") == 0)
            chaos = arg_ul(a, v, 1000);
        else if (strcmp(a, "--chaos-every") == 0)
            chaos_every = arg_ul(a, v, 100000000);
        else if (strcmp(a, "--value-bytes") == 0)
            value_bytes = arg_ul(a, v, PXS_COMMAND_MAX_LIMIT / 2 - 4096);
        else if (strcmp(a, "--value-max") == 0)
            value_max = arg_ul(a, v, PXS_COMMAND_MAX_LIMIT / 2 - 4096);
        else if (strcmp(a, "--big-every") == 0)
            big_every = arg_ul(a, v, 100000000);
        else if (strcmp(a, "--keys") == 0)
            key_count = arg_ul(a, v, 1000000);
        else if (strcmp(a, "--seed") == 0)
            seed = arg_ul(a, v, 0xffffffffUL);
        else if (strcmp(a, "--window") == 0)
            window = arg_ul(a, v, 1024);
        else if (strcmp(a, "--nodes") == 0)
            nodes = arg_ul(a, v, PXS_NODES_MAX);
        else if (strcmp(a, "--proposers") == 0)
            proposers = arg_ul(a, v, PXS_NODES_MAX);
        else if (strcmp(a, "--acceptors") == 0)
            acceptors = arg_ul(a, v, PXS_NODES_MAX);
        else if (strcmp(a, "--learners") == 0)
            learners = arg_ul(a, v, PXS_NODES_MAX);
        else if (strcmp(a, "--timeout") == 0)
            timeout = arg_ul(a, v, 86400);
        else if (strcmp(a, "--data-dir") == 0 && v)
            data_dir = v;
        else if (strcmp(a, "--model") == 0 && v)
            model = v;
        else if (strcmp(a, "--continue") == 0 && (cont = 1))
            continue; /* takes no value */
        else if (strcmp(a, "--lost-results-ok") == 0 && (lost_ok = 1))
            continue;
        else if (strcmp(a, "--store") == 0 && v && strcmp(v, "shm") == 0)
            store = PXS_STORE_SHM;
        else if (strcmp(a, "--store") == 0 && v && strcmp(v, "sqlite") == 0)
            store = PXS_STORE_SQLITE;
        else {
            fprintf(stderr, USAGE);
            return 2;
        }
        i++;
    }
    char model_path[4096];
    if (data_dir)
        snprintf(model_path, sizeof model_path, "%s", model ? model : data_dir);
    if (data_dir && !model)
        strncat(model_path, ".model", sizeof model_path - strlen(model_path) - 1);
    if ((cont || model) && !data_dir) {
        fprintf(stderr, "kv_demo: --continue and --model need --data-dir\n");
        return 2;
    }
    int big = value_bytes > 65536 || value_max > 65536;
    if (commands == 0)
        commands = big ? 100 : 2000;
    if (cont) {
        if (load_model(model_path) != 0)
            return 1;
    } else {
        if (key_count == 0)
            key_count = big ? 8 : 64;
        nkeys = (uint32_t)key_count;
        keys = calloc(nkeys, sizeof *keys);
    }
    rng_state = seed;
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
    c.nodes = (uint32_t)nodes;
    c.proposers = (uint32_t)proposers;
    c.acceptors = (uint32_t)acceptors;
    c.learners = (uint32_t)learners;
    c.chaos_kills = (uint32_t)chaos;
    c.chaos_every = (uint32_t)(chaos_every ? chaos_every : commands / (chaos + 1));
    c.seed = seed;
    c.store = store;
    c.quiet = 1;
    c.timeout_s = (uint32_t)timeout;
    c.data_dir = data_dir;
    if (window)
        c.window = (uint32_t)window;
    /* The longest command: a cas carries the expected and the new value. A data dir keeps its
     * command_max: a continued run keeps the first run's longest value (its model says). */
    if (!cont) {
        value_cap = value_bytes ? value_bytes : value_max ? value_max : 64;
        if (big_every && value_cap < BIG_VALUE)
            value_cap = BIG_VALUE;
    }
    c.command_max = (uint32_t)kv_cas_size(8, value_cap, value_cap);
    if (c.command_max < PXS_COMMAND_MAX_DEFAULT)
        c.command_max = PXS_COMMAND_MAX_DEFAULT;
    struct pxs_pool *p;
    int rc = pxs_open(&c, &sm, &p);
    if (rc != 0) {
        fprintf(stderr, "kv_demo: pxs_open: %s\n", pxs_strerror(rc));
        free(ops);
        kv_free(kv);
        return rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR || rc == -EACCES ? 2 : 3;
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
        uint8_t *cmd = make_command(op, k, &len);
        if (n % 10 == 9) { /* every tenth command waits for its result */
            failed = run_call(p, op, cmd, len) != 0;
            called++;
        } else {
            while ((rc = pxs_submit(p, cmd, len, done, op)) == -EAGAIN)
                if (pxs_poll(p, -1) < 0)
                    break;
            if (rc != 0) {
                if (rc != -ESHUTDOWN && rc != -EAGAIN)
                    fprintf(stderr, "kv_demo: pxs_submit: %s\n", pxs_strerror(rc));
                drop_op(op);
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
    /* A get of every key, checked against the model like the rest (twice for a key that a
     * cancelled command left uncertain and whose first get lost its result). */
    for (uint32_t k = 0; k < nkeys && !failed; k++) {
        struct op *op = &ops[commands + k];
        uint8_t key[8], cmd[16];
        size_t klen = key_bytes(k, key);
        for (int tries = 0; tries < 3 && !failed && (tries == 0 || keys[k].uncertain); tries++) {
            memset(op, 0, sizeof *op);
            op->kind = KV_GET;
            op->key = k;
            failed = run_call(p, op, cmd, kv_encode_get(cmd, key, klen)) != 0;
            called++;
        }
    }
    if (failed)
        stopping = 1; /* pxs_close cancels what is in flight */
    uint64_t model_digest = 0, model_count = 0;
    int unsure = 0;
    for (uint32_t k = 0; k < nkeys; k++) {
        unsure |= keys[k].uncertain;
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
    int signalled = verdict > PXS_EXIT_SIGNAL_BASE;
    if (failed && !signalled) {
        fprintf(stderr, "kv_demo: the pool failed (pxs_close %d)\n", verdict);
        disagreements++;
    }
    if (verdict == PXS_EXIT_VERIFIED && !unsure && r.sm_digest != model_digest) {
        fprintf(stderr, "kv_demo: learners' digest %016" PRIx64 ", the model's %016" PRIx64 "\n",
                r.sm_digest, model_digest);
        disagreements++;
    }
    if (verdict == PXS_EXIT_VERIFIED && (r.applied < applied_lo || r.applied > applied_hi)) {
        fprintf(stderr,
                "kv_demo: %" PRIu64 " commands applied, %" PRIu64 " submitted (%" PRIu64
                " more cancelled)\n",
                r.applied, applied_lo, applied_hi - applied_lo);
        disagreements++;
    }
    /* The header allows a lost result only with the learner that made it: with no node
     * restarted none should be lost (--lost-results-ok: counted, not a disagreement). */
    if (lost > 0 && r.restarts == 0 && !lost_ok) {
        fprintf(stderr, "kv_demo: %lu results lost with no node restarted\n", lost);
        disagreements++;
    }
    /* The count is known again (the pool's own) once it verified. */
    if (verdict == PXS_EXIT_VERIFIED)
        applied_lo = applied_hi = r.applied;
    if (data_dir && save_model(model_path) != 0) {
        fprintf(stderr, "kv_demo: cannot write the model %s\n", model_path);
        disagreements++;
    }
    printf("kv_demo: %lu commands (%lu submitted, %lu called), %lu completed, %lu results lost, "
           "%lu cancelled, %lu resolved, %lu answered at index 0, %" PRIu32 " restarts, %" PRIu32
           " chaos kills, pxs_close %d, %lu disagreements\n",
           submitted + called, submitted, called, completed, lost, cancelled, resolved, index0,
           r.restarts, r.chaos_kills, verdict, disagreements);
    for (uint32_t k = 0; k < nkeys; k++) {
        free(keys[k].val);
        free(keys[k].alt_val);
    }
    free(keys);
    free(ops);
    kv_free(kv);
    if (signalled)
        return verdict;
    return verdict == PXS_EXIT_VERIFIED && disagreements == 0 ? 0 : verdict ? verdict : 1;
}
