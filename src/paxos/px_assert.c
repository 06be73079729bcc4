/* px_assert.c: the default assertion handler. Weak, so a program (the node, the simulator) can
 * print the failure before aborting; the core itself never prints. */
#include <stdlib.h>

#include "px.h"

__attribute__((weak)) void px_assert_fail(const char *expr, const char *file, int line)
{
    (void)expr;
    (void)file;
    (void)line;
    abort();
}
