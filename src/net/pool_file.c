/* pool_file.c: the pool file parser (format in pool_file.h). */
#include "net/pool_file.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

/* Longest line read: a key line is far shorter; a longer one is an error, not truncated. */
#define POOL_LINE_MAX 1024

struct parse {
    const char *path;
    unsigned line;
    char *err;
    size_t err_len;
    char dir[PATH_MAX]; /* the pool file's directory, for relative key paths */
    struct net_pool *p;
    int section; /* -2 none yet, -1 [pool], else the host index */
    bool seen_pool, seen_nodes;
    bool host_has[NET_HOSTS_MAX][5]; /* address, port, nodes, public_key, secret_key_file */
};

__attribute__((format(printf, 2, 3))) static int fail(struct parse *ps, const char *fmt, ...)
{
    int off = ps->line ? snprintf(ps->err, ps->err_len, "%s:%u: ", ps->path, ps->line)
                       : snprintf(ps->err, ps->err_len, "%s: ", ps->path);
    if (off < 0 || (size_t)off >= ps->err_len)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + off, ps->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A decimal in [lo, hi], the whole string. */
static int parse_u32(struct parse *ps, const char *key, const char *v, uint32_t lo, uint32_t hi,
                     uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (v[0] == '\0' || v[0] == '-' || errno != 0 || *end != '\0' || x < lo || x > hi)
        return fail(ps, "%s = '%s': expected a number in %u..%u", key, v, lo, hi);
    *out = (uint32_t)x;
    return 0;
}

/* "0-2, 5, 7": node ids and ranges. */
static int parse_nodes(struct parse *ps, char *v, uint64_t *mask)
{
    *mask = 0;
    for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        uint32_t a = 0, b = 0;
        char *dash = strchr(tok, '-');
        if (dash) {
            *dash = '\0';
            if (parse_u32(ps, "nodes", trim(tok), 0, NET_NODES_MAX - 1, &a) ||
                parse_u32(ps, "nodes", trim(dash + 1), 0, NET_NODES_MAX - 1, &b))
                return -1;
            if (b < a)
                return fail(ps, "nodes: range %u-%u is empty", a, b);
        } else {
            if (parse_u32(ps, "nodes", tok, 0, NET_NODES_MAX - 1, &a))
                return -1;
            b = a;
        }
        for (uint32_t i = a; i <= b; i++) {
            if (*mask & (1ull << i))
                return fail(ps, "nodes: node %u is listed twice", i);
            *mask |= 1ull << i;
        }
    }
    if (*mask == 0)
        return fail(ps, "nodes: no node id");
    return 0;
}

static int section_header(struct parse *ps, char *s)
{
    size_t n = strlen(s);
    if (s[n - 1] != ']')
        return fail(ps, "section header without ']'");
    s[n - 1] = '\0';
    char *name = trim(s + 1);
    if (strcmp(name, "pool") == 0) {
        if (ps->seen_pool)
            return fail(ps, "[pool] appears twice");
        ps->seen_pool = true;
        ps->section = -1;
        return 0;
    }
    if (strncmp(name, "host", 4) != 0 || !isspace((unsigned char)name[4]))
        return fail(ps, "unknown section [%s] (expected [pool] or [host NAME])", name);
    char *host = trim(name + 4);
    if (host[0] == '\0' || strlen(host) >= NET_HOST_NAME_MAX)
        return fail(ps, "host name must have 1..%d characters", NET_HOST_NAME_MAX - 1);
    for (const char *c = host; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return fail(ps, "host name '%s': only letters, digits, '-', '_' and '.'", host);
    if (net_pool_host_index(ps->p, host) >= 0)
        return fail(ps, "host '%s' appears twice", host);
    if (ps->p->hosts == NET_HOSTS_MAX)
        return fail(ps, "more than %d hosts", NET_HOSTS_MAX);
    ps->section = (int)ps->p->hosts++;
    snprintf(ps->p->host[ps->section].name, NET_HOST_NAME_MAX, "%s", host);
    return 0;
}

static int pool_key(struct parse *ps, const char *k, const char *v)
{
    struct net_pool *p = ps->p;
    if (strcmp(k, "nodes") == 0) {
        ps->seen_nodes = true;
        return parse_u32(ps, k, v, 1, NET_NODES_MAX, &p->nodes);
    }
    if (strcmp(k, "proposers") == 0)
        return parse_u32(ps, k, v, 1, NET_NODES_MAX, &p->proposers);
    if (strcmp(k, "acceptors") == 0)
        return parse_u32(ps, k, v, 1, NET_NODES_MAX, &p->acceptors);
    if (strcmp(k, "learners") == 0)
        return parse_u32(ps, k, v, 1, NET_NODES_MAX, &p->learners);
    return fail(ps, "unknown key '%s' in [pool] (nodes, proposers, acceptors, learners)", k);
}

static int host_key(struct parse *ps, const char *k, char *v)
{
    struct net_host *h = &ps->p->host[ps->section];
    bool *has = ps->host_has[ps->section];
    static const char *const keys[] = {"address", "port", "nodes", "public_key", "secret_key_file"};
    int which = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(k, keys[i]) == 0)
            which = i;
    if (which < 0)
        return fail(ps,
                    "unknown key '%s' in [host %s] (address, port, nodes, public_key, "
                    "secret_key_file)",
                    k, h->name);
    if (has[which])
        return fail(ps, "'%s' given twice in [host %s]", k, h->name);
    has[which] = true;
    unsigned char buf[16];
    uint32_t port = 0;
    switch (which) {
    case 0:
        if (strlen(v) >= NET_ADDRESS_MAX ||
            (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1))
            return fail(ps, "address '%s' is not an IPv4 or IPv6 address literal", v);
        snprintf(h->address, sizeof(h->address), "%s", v);
        return 0;
    case 1:
        if (parse_u32(ps, k, v, 1, 65535, &port))
            return -1;
        h->port = (uint16_t)port;
        return 0;
    case 2:
        return parse_nodes(ps, v, &h->nodes_mask);
    case 3: {
        uint8_t key[32];
        if (strlen(v) != NET_KEY_TEXT_BYTES || zmq_z85_decode(key, v) == NULL)
            return fail(ps, "public_key: expected %d Z85 characters (paxos-shm-keygen)",
                        NET_KEY_TEXT_BYTES);
        memcpy(h->public_key, v, NET_KEY_TEXT_BYTES + 1);
        return 0;
    }
    default:
        if (v[0] == '\0')
            return fail(ps, "secret_key_file is empty");
        if (v[0] == '/')
            snprintf(h->secret_key_file, sizeof(h->secret_key_file), "%s", v);
        else if ((size_t)snprintf(h->secret_key_file, sizeof(h->secret_key_file), "%s/%s", ps->dir,
                                  v) >= sizeof(h->secret_key_file))
            return fail(ps, "secret_key_file: path too long");
        return 0;
    }
}

static int parse_line(struct parse *ps, char *raw)
{
    char *s = trim(raw);
    if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
        return 0;
    if (s[0] == '[')
        return section_header(ps, s);
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return fail(ps, "expected 'key = value' or a [section]");
    *eq = '\0';
    char *k = trim(s), *v = trim(eq + 1);
    if (ps->section == -2)
        return fail(ps, "'%s' before any section", k);
    return ps->section == -1 ? pool_key(ps, k, v) : host_key(ps, k, v);
}

/* Whole-file rules, checked after the last line. */
static int check_pool(struct parse *ps)
{
    struct net_pool *p = ps->p;
    ps->line = 0;
    if (!ps->seen_pool || !ps->seen_nodes)
        return fail(ps, "missing [pool] with nodes = N");
    if (p->hosts == 0)
        return fail(ps, "no [host NAME] section");
    if (p->proposers == 0)
        p->proposers = p->nodes < 3 ? p->nodes : 3;
    if (p->acceptors == 0)
        p->acceptors = p->nodes;
    if (p->learners == 0)
        p->learners = p->nodes;
    if (p->proposers > p->nodes || p->acceptors > p->nodes || p->learners > p->nodes)
        return fail(ps, "proposers, acceptors and learners must each be at most nodes = %u",
                    p->nodes);
    static const char *const keys[] = {"address", "port", "nodes", "public_key", "secret_key_file"};
    uint64_t all = 0;
    for (uint32_t h = 0; h < p->hosts; h++) {
        const struct net_host *x = &p->host[h];
        for (int k = 0; k < 5; k++)
            if (!ps->host_has[h][k])
                return fail(ps, "[host %s] has no %s", x->name, keys[k]);
        if (x->nodes_mask & all)
            return fail(ps, "[host %s] lists a node id another host lists", x->name);
        if (p->nodes < 64 && (x->nodes_mask >> p->nodes) != 0)
            return fail(ps, "[host %s] lists a node id >= nodes = %u", x->name, p->nodes);
        all |= x->nodes_mask;
        for (uint32_t g = 0; g < h; g++) {
            if (strcmp(p->host[g].address, x->address) == 0 && p->host[g].port == x->port)
                return fail(ps, "[host %s] and [host %s] have the same address and port",
                            p->host[g].name, x->name);
            if (strcmp(p->host[g].public_key, x->public_key) == 0)
                return fail(ps, "[host %s] and [host %s] have the same public_key", p->host[g].name,
                            x->name);
        }
        for (uint32_t i = 0; i < p->nodes; i++)
            if (x->nodes_mask & (1ull << i))
                p->host_of[i] = (uint8_t)h;
    }
    uint64_t want = p->nodes == 64 ? ~0ull : (1ull << p->nodes) - 1;
    if (all != want) {
        uint32_t i = 0;
        while (all & (1ull << i))
            i++;
        return fail(ps, "node %u runs on no host", i);
    }
    return 0;
}

int net_pool_load(const char *path, struct net_pool *out, char *err, size_t err_len)
{
    struct parse ps = {.path = path, .err = err, .err_len = err_len, .p = out, .section = -2};
    memset(out, 0, sizeof(*out));
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(ps.dir, sizeof(ps.dir), ".");
    else
        snprintf(ps.dir, sizeof(ps.dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fail(&ps, "%s", strerror(errno));
    char line[POOL_LINE_MAX];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        ps.line++;
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n' && !feof(f))
            rc = fail(&ps, "line longer than %d characters", POOL_LINE_MAX - 2);
        else if (memchr(line, '\0', n) != NULL || strlen(line) != n)
            rc = fail(&ps, "NUL byte in the line");
        else
            rc = parse_line(&ps, line);
    }
    if (rc == 0 && ferror(f))
        rc = fail(&ps, "read error");
    fclose(f);
    return rc == 0 ? check_pool(&ps) : rc;
}

int net_pool_host_index(const struct net_pool *p, const char *name)
{
    for (uint32_t h = 0; h < p->hosts; h++)
        if (strcmp(p->host[h].name, name) == 0)
            return (int)h;
    return -1;
}

int net_pool_read_secret(const struct net_pool *p, uint32_t h, char out[NET_KEY_TEXT_BYTES + 1],
                         char *err, size_t err_len)
{
    const struct net_host *x = &p->host[h];
    FILE *f = fopen(x->secret_key_file, "r");
    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", x->secret_key_file, strerror(errno));
        return -1;
    }
    /* As ssh does with a private key: a secret others may read or change is refused. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, err_len, "%s: %s", x->secret_key_file, strerror(errno));
        fclose(f);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, err_len, "%s: permissions %04o are too open; chmod 600 %s",
                 x->secret_key_file, (unsigned)(st.st_mode & 07777), x->secret_key_file);
        fclose(f);
        return -1;
    }
    char buf[NET_KEY_TEXT_BYTES + 3] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    uint8_t key[32];
    char pub[NET_KEY_TEXT_BYTES + 1];
    if (n != NET_KEY_TEXT_BYTES || zmq_z85_decode(key, buf) == NULL ||
        zmq_curve_public(pub, buf) != 0) {
        snprintf(err, err_len, "%s: not a secret key (%d Z85 characters, paxos-shm-keygen)",
                 x->secret_key_file, NET_KEY_TEXT_BYTES);
        return -1;
    }
    if (strcmp(pub, x->public_key) != 0) {
        snprintf(err, err_len, "%s: this secret key does not belong to the public_key of [host %s]",
                 x->secret_key_file, x->name);
        return -1;
    }
    memcpy(out, buf, NET_KEY_TEXT_BYTES + 1);
    return 0;
}
