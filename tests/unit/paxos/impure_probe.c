/* impure_probe.c: a deliberately impure "core" (calls malloc and printf) that the symbol check
 * must reject, so paxos_core_links_only_libc is known to be able to fail. */
#include <stdio.h>
#include <stdlib.h>

void *px_impure_probe(void);
void *px_impure_probe(void)
{
    void *p = malloc(1);
    printf("%p\n", p);
    return p;
}
