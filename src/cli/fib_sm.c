/* fib_sm.c: the main job's Fibonacci state machine (fib_sm.h). */
#include "cli/fib_sm.h"

#include <errno.h>
#include <stdint.h>

static uint64_t fib_value; /* this process's state */

static uint64_t le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static int fib_start(void *ctx, uint32_t node)
{
    (void)ctx;
    (void)node;
    fib_value = 1; /* F(1) */
    return 0;
}

static int fib_apply(void *ctx, uint64_t index, const void *cmd, size_t len, const void **result,
                     size_t *result_len)
{
    (void)ctx;
    (void)index;
    (void)result;
    (void)result_len;
    if (len < 8)
        return FIB_SM_SHORT;
#ifdef FIB_SM_BUG_DROP
    if (index % 1000 == 0)
        return 0; /* planted (tests/e2e): every learner skips the same increments, so their
                   * histories and values agree with each other, not with F(R + 1) */
#endif
    fib_value += le64(cmd);
    return 0;
}

static int fib_snapshot(void *ctx, struct pxs_writer *w)
{
    (void)ctx;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(fib_value >> (8 * i));
    return w->write(w, b, sizeof(b));
}

static int fib_restore(void *ctx, struct pxs_reader *r)
{
    (void)ctx;
    uint8_t b[9];
    size_t got = 0;
    for (;;) {
        long n = r->read(r, b + got, sizeof(b) - got);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == sizeof(b))
            return -EBADMSG; /* longer than a value */
    }
    if (got != 8)
        return -EBADMSG;
    fib_value = le64(b);
    return 0;
}

static uint64_t fib_digest(void *ctx)
{
    (void)ctx;
    return fib_value;
}

static const struct pxs_state_machine fib_machine = {
    .size = sizeof(struct pxs_state_machine),
    .start = fib_start,
    .apply = fib_apply,
    .snapshot = fib_snapshot,
    .restore = fib_restore,
    .digest = fib_digest,
};

const struct pxs_state_machine *fib_sm(void)
{
    return &fib_machine;
}
