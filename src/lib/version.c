/* version.c: the library's version and its error texts. */
#include <errno.h>
#include <string.h>

#include "paxos-shm/paxos_shm.h"

#define PXS_STR2(x) #x
#define PXS_STR(x)  PXS_STR2(x)

const char *pxs_version(void)
{
    return PXS_STR(PXS_VERSION_MAJOR) "." PXS_STR(PXS_VERSION_MINOR) "." PXS_STR(PXS_VERSION_PATCH);
}

const char *pxs_strerror(int err)
{
    switch (-err) {
    case 0:
        return "success";
    case EMSGSIZE:
        return "command too long";
    case EAGAIN:
        return "window full: poll, then submit again";
    case ESHUTDOWN:
        return "pool closing or failed";
    case ECANCELED:
        return "pool closed before the command completed";
    case EBUSY:
        return "a pool is already open in this process, or the data dir is in use";
    case EEXIST:
        return "the data dir belongs to another pool or configuration";
    default:
        return err < 0 ? strerror(-err) : "not an error code";
    }
}
