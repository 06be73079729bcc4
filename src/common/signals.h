/* signals.h: what every process of a run does with each signal, in one place.
 *
 * The stop signals are those whose default action would end the process and that do not report
 * a bug in it: SIGHUP (a closed terminal, an ssh disconnect), SIGINT, SIGQUIT, SIGUSR1/2, SIGALRM,
 * SIGTERM, SIGSTKFLT, SIGXCPU, SIGVTALRM, SIGPROF, SIGIO, SIGPWR and the real-time signals. The
 * supervisor stops the run on any of them exactly as on SIGTERM (nodes stopped, segment unlinked,
 * a fresh data directory removed) and exits 128 + the signal. Its children (nodes, the gateway)
 * ignore all of them but SIGTERM, so that a signal to the whole process group (Ctrl-C, a hang-up)
 * reaches them only as the supervisor's stop. SIGPIPE is ignored by every process: a write to a
 * closed pipe is an error the writer reports. SIGKILL and SIGSTOP cannot be caught; the faults
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT of an assertion) keep their default
 * action, a core dump; the job-control signals keep theirs. */
#ifndef PX_SIGNALS_H
#define PX_SIGNALS_H

#include <signal.h>
#include <stdio.h>

/* The stop signals as a set (SIGRTMIN is not a constant, so no static table holds them all). */
static inline void px_stop_signals(sigset_t *set)
{
    static const int fixed[] = {
        SIGHUP,    SIGINT,  SIGQUIT,   SIGUSR1, SIGUSR2, SIGALRM,
        SIGTERM,   SIGXCPU, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,
#ifdef SIGSTKFLT
        SIGSTKFLT,
#endif
    };
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        sigaddset(set, fixed[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigaddset(set, sig);
}

/* A child of the supervisor: every stop signal but SIGTERM ignored, SIGPIPE ignored. */
static inline void px_child_signals(void)
{
    sigset_t stop;
    px_stop_signals(&stop);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGTERM && sigismember(&stop, sig) == 1)
            signal(sig, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

/* "SIGHUP", "SIGRTMIN+3", ... for a stop signal; "signal N" for any other. */
static inline const char *px_signal_name(int sig, char *buf, size_t len)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"},
        {SIGUSR2, "SIGUSR2"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
        {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGIO, "SIGIO"},     {SIGPWR, "SIGPWR"},
#ifdef SIGSTKFLT
        {SIGSTKFLT, "SIGSTKFLT"},
#endif
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].sig == sig)
            return names[i].name;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

#endif
