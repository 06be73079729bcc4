/* version.c: the smallest program over libpaxos-shm: prints the library's version and the texts
 * of its error codes, and fails when the library linked is not the version of the header. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <paxos-shm/paxos_shm.h>

int main(void)
{
    char header[32];
    snprintf(header, sizeof header, "%d.%d.%d", PXS_VERSION_MAJOR, PXS_VERSION_MINOR,
             PXS_VERSION_PATCH);
    printf("libpaxos-shm %s (header %s)\n", pxs_version(), header);
    const int errs[] = {0, -EINVAL, -EMSGSIZE, -EAGAIN, -ESHUTDOWN, -ECANCELED, -EEXIST, -EBUSY};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        printf("%4d %s\n", errs[i], pxs_strerror(errs[i]));
    if (strcmp(pxs_strerror(-EMSGSIZE), "command too long") != 0)
        return 1;
    return strcmp(pxs_version(), header) == 0 ? 0 : 1;
}
