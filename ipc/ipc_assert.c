#include "ipc/ipc_assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void ipc_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "ipc assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
