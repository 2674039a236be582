/* cli_signal.c: what every command does on a signal: a progress line on SIGUSR1, SIGXFSZ ignored, otherwise clean up and die by it, or, in place, stop at the library's next safe point. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/*
 * The signals whose default action ends the process and that a user or
 * the system sends (signal(7)). The synchronous ones (SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) mean a bug and keep their
 * default action, core dump included; SIGKILL and SIGSTOP cannot be
 * caught; SIGUSR1 and SIGXFSZ are handled apart. Real-time signals are
 * added at run time.
 */
static const int fatal[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR2,
	SIGXCPU, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
};

volatile sig_atomic_t cli_cancel;
static volatile sig_atomic_t deferring;
static void (*cleanup)(void);

/* Progress as the library last reported it, for SIGUSR1. */
static volatile uint64_t prog_done, prog_total;

void cli_progress_note(uint64_t done, uint64_t total)
{
	prog_done = done;
	prog_total = total;
}

/* Async-signal-safe formatting: append s, or n in decimal, to buf. */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, uint64_t n)
{
	char d[24];
	int i = 0;

	do
		d[i++] = (char)('0' + n % 10);
	while ((n /= 10) && i < (int)sizeof(d));
	while (i && at < cap)
		buf[at++] = d[--i];
	return at;
}

/* SIGUSR1: one line on stderr saying how far the work is, as dd does. */
static void on_usr1(int sig)
{
	uint64_t done = prog_done, total = prog_total;
	int saved = errno;
	char line[256];
	size_t n = 0, cap = sizeof(line) - 1;
	ssize_t w;

	(void)sig;
	n = put_str(line, n, cap, cli_prog);
	n = put_str(line, n, cap, ": ");
	if (total) {
		n = put_num(line, n, cap, done);
		n = put_str(line, n, cap, " of ");
		n = put_num(line, n, cap, total);
		n = put_str(line, n, cap, " bytes (");
		n = put_num(line, n, cap, done * 100 / total);
		n = put_str(line, n, cap, "%)");
	} else if (done) {
		/* a stream: its length is known at its end */
		n = put_num(line, n, cap, done);
		n = put_str(line, n, cap, " bytes");
	} else {
		n = put_str(line, n, cap, "working, no progress to report yet");
	}
	line[n++] = '\n';
	w = write(STDERR_FILENO, line, n);
	(void)w;
	errno = saved;
}

static void on_fatal(int sig)
{
	if (deferring) {
		/* in place: the library stops at its next safe point */
		if (!cli_cancel)
			cli_cancel = sig;
		return;
	}
	if (cleanup)
		cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Install handler for sig unless the caller ignores it (nohup). */
static void catch(int sig, void (*handler)(int))
{
	struct sigaction sa, old;

	if (sigaction(sig, NULL, &old) < 0 || old.sa_handler == SIG_IGN)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

void cli_signals_init(void)
{
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		catch(fatal[i], on_fatal);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		catch(sig, on_fatal);
	catch(SIGUSR1, on_usr1);
	/* A file size limit shows as EFBIG, which names the output. */
	signal(SIGXFSZ, SIG_IGN);
}

void cli_signals_cleanup(void (*fn)(void))
{
	cleanup = fn;
}

void cli_signals_defer(void)
{
	deferring = 1;
}

void cli_interrupted(const char *fmt, ...)
{
	int sig = cli_cancel;
	const char *abbrev = sigabbrev_np(sig);
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_progress_end();
	cli_warn("interrupted by SIG%s: %s", abbrev ? abbrev : "?", msg);
	fflush(stdout);
	fflush(stderr);
	deferring = 0;
	if (cleanup)
		cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);       /* a signal that does not end us after all */
}
