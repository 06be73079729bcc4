/* version.c: pxs_version and pxs_strerror (include/paxos-shm/paxos_shm.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrordesc_np */
#endif
#include <errno.h>
#include <string.h>

#include "paxos-shm/paxos_shm.h"

#ifndef PXS_LIB_VERSION
#error "PXS_LIB_VERSION is defined by src/lib/CMakeLists.txt (the project's version)"
#endif

const char *pxs_version(void)
{
    return PXS_LIB_VERSION;
}

const char *pxs_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -EINVAL:
        return "invalid argument or configuration";
    case -EMSGSIZE:
        return "command too long";
    case -EAGAIN:
        return "too many commands in flight (poll, then submit again)";
    case -ESHUTDOWN:
        return "the pool is closing or has failed";
    case -ECANCELED:
        return "the pool closed before the command completed";
    case -EEXIST:
        return "the data directory belongs to another pool";
    case -EBUSY:
        return "the data directory is in use by another pool";
    case -EIO:
        return "input/output error";
    case -ENOMEM:
        return "out of memory";
    case -ETIMEDOUT:
        return "timed out";
    case -EINTR:
        return "a stop signal came while the pool started";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* Another errno (a store or a system call said it): the C library's text for it, which
         * unlike strerror's is a constant string (no buffer shared between threads). */
        const char *text = strerrordesc_np(-err);
        if (text != NULL)
            return text;
    }
    return "unknown error";
}
