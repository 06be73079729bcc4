/* uses_header.c: compiled by check_header.sh as C11 and as C++11. Uses every type of the
 * header and names every call, so that a declaration one language rejects fails the test. */
#include <paxos-shm/paxos_shm.h>

static int apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                 size_t *result_len)
{
    (void)ctx;
    (void)index;
    (void)cmd;
    *result = 0;
    *result_len = len;
    return 0;
}

static void done(void *arg, const struct pxs_outcome *o)
{
    *(int *)arg = o->err;
}

int uses_header(struct pxs_pool *p);
int uses_header(struct pxs_pool *p)
{
    struct pxs_state_machine sm = {sizeof sm, 0, 0, 0, apply, 0, 0, 0};
    struct pxs_config c;
    struct pxs_report r;
    struct pxs_outcome o;
    enum pxs_store store = PXS_STORE_SHM;
    int err = 0;
    char buf[16];
    pxs_config_init(&c);
    c.store = store;
    r.size = sizeof r;
    if (pxs_open(&c, &sm, &p) != 0)
        return PXS_EXIT_USAGE;
    pxs_submit(p, "x", 1, done, &err);
    pxs_poll(p, -1);
    pxs_call(p, 0, 0, buf, sizeof buf, &o);
    (void)pxs_version();
    (void)pxs_strerror(err);
    return pxs_close(p, &r) == PXS_EXIT_VERIFIED && PXS_RESULT_MAX > 0 && PXS_NODES_MAX > 0 &&
           PXS_COMMAND_MAX_DEFAULT <= PXS_COMMAND_MAX_LIMIT;
}
