/* ipc_assert.h: assertions of the ipc layer. They stay on in release builds: a broken ring
 * invariant must stop the process, never corrupt shared memory silently. The ipc layer knows
 * nothing of the Paxos core, so it has its own failure hook instead of PX_ASSERT. */
#ifndef IPC_ASSERT_H
#define IPC_ASSERT_H

/* Prints "ipc assertion failed: expr (file:line)" to stderr and aborts. Never returns. */
/* Cold: the failure path is moved out of line, the fast path keeps no frame for it. */
__attribute__((cold)) _Noreturn void ipc_assert_fail(const char *expr, const char *file, int line);

#define IPC_ASSERT(e)                                                                              \
    (__builtin_expect(!!(e), 1) ? (void)0 : ipc_assert_fail(#e, __FILE__, __LINE__))

#endif
