/* batch.c: running one job per input in child processes, N at a time, with a status line per input and a summary. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "json.h"

/* A child's captured stderr: what it wrote, up to this much (the end is
 * kept: the reason of a failure is its last line). */
#define ERR_KEEP 8192

struct child {
	pid_t pid;
	int fd;                 /* read end of its stderr, -1 once at EOF */
	int idx;                /* which input */
	char err[ERR_KEEP];
	size_t len;
	double start;
};

struct tally {
	int done, warned, skipped, failed;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Whether the n bytes at name end with suffix (case ignored). */
static int ends_with(const char *name, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && !strncasecmp(name + n - k, suffix, k);
}

char *batch_output_name(const char *dir, const char *src, const char *ext)
{
	static const char *const packing[] = {
		".gz", ".xz", ".zst", ".bz2", ".lz4", ".tar", ".zip", ".cpio",
		".7z", NULL,
	};
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	size_t n = strlen(base);
	char *out;

	/* disk.raw.xz and disk.tar.gz become disk.EXT, as disk.raw does */
	for (int i = 0; packing[i]; i++) {
		if (ends_with(base, n, packing[i])) {
			n -= strlen(packing[i]);
			i = -1;
		}
	}
	for (size_t k = n; k > 1; k--) {
		if (base[k - 1] == '.') {
			n = k - 1;
			break;
		}
	}
	if (asprintf(&out, "%s/%.*s.%s", dir, (int)n, base, ext) < 0)
		return NULL;
	return out;
}

static void start(struct child *c, int idx, const char *const *srcs,
		  char *const *dsts, batch_job_fn job, void *arg)
{
	int p[2];

	if (pipe(p) < 0)
		cli_die(EXIT_FAIL, "cannot make a pipe: %s", strerror(errno));
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0)
		cli_die(EXIT_FAIL, "cannot start a job: %s", strerror(errno));
	if (c->pid == 0) {
		/* The job ends with us: if we go, it stops and cleans up. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(EXIT_FAIL);
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		close(p[1]);
		exit(job(srcs[idx], dsts[idx], arg));
	}
	close(p[1]);
	c->fd = p[0];
	c->idx = idx;
	c->len = 0;
	c->start = now();
}

/* Read what the child wrote; at EOF close. */
static void drain(struct child *c)
{
	char buf[4096];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		close(c->fd);
		c->fd = -1;
		return;
	}
	if ((size_t)n > ERR_KEEP - c->len) {
		size_t drop = (size_t)n - (ERR_KEEP - c->len);

		if (drop > c->len)
			drop = c->len;
		memmove(c->err, c->err + drop, c->len - drop);
		c->len -= drop;
	}
	if ((size_t)n > ERR_KEEP - c->len)
		n = (ssize_t)(ERR_KEEP - c->len);
	memcpy(c->err + c->len, buf, (size_t)n);
	c->len += (size_t)n;
}

/* Split the captured text: the lines before the last go to our stderr;
 * the last one, less the "prog: " prefix, is returned. */
static const char *last_line(struct child *c)
{
	char *s = c->err, *last;
	size_t plen = strlen(cli_prog);

	while (c->len && c->err[c->len - 1] == '\n')
		c->len--;
	c->err[c->len < ERR_KEEP ? c->len : ERR_KEEP - 1] = '\0';
	last = strrchr(s, '\n');
	if (last) {
		*last++ = '\0';
		fprintf(stderr, "%s\n", s);
	} else {
		last = s;
	}
	if (!strncmp(last, cli_prog, plen) && !strncmp(last + plen, ": ", 2))
		last += plen + 2;
	return last;
}

static void report(struct child *c, int status, const char *const *srcs,
		   char *const *dsts, const struct batch_opts *o,
		   struct tally *t)
{
	const char *what, *why = last_line(c);
	char sig[64];
	double secs = now() - c->start;

	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_OK) {
		what = o->done_word;
		t->done++;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		what = "warned";
		t->warned++;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == BATCH_SKIPPED) {
		what = "skipped";
		t->skipped++;
	} else {
		what = "failed";
		t->failed++;
		if (WIFSIGNALED(status)) {
			snprintf(sig, sizeof(sig), "killed by signal %d",
				 WTERMSIG(status));
			if (!*why)
				why = sig;
		}
	}
	if (o->json) {
		fputs("{\"source\": ", stdout);
		json_quote(stdout, srcs[c->idx]);
		fputs(", \"target\": ", stdout);
		json_quote(stdout, dsts[c->idx]);
		printf(", \"status\": \"%s\", \"seconds\": %.3f", what, secs);
		if (*why) {
			fputs(", \"message\": ", stdout);
			json_quote(stdout, why);
		}
		fputs("}\n", stdout);
	} else if (*why) {
		printf("%s -> %s: %s (%.2f s): %s\n", srcs[c->idx], dsts[c->idx],
		       what, secs, why);
	} else {
		printf("%s -> %s: %s (%.2f s)\n", srcs[c->idx], dsts[c->idx],
		       what, secs);
	}
	fflush(stdout);
}

int batch_run(const char *const *srcs, char *const *dsts, int n,
	      batch_job_fn job, void *arg, const struct batch_opts *o)
{
	struct child *kids = calloc((size_t)o->jobs, sizeof(*kids));
	struct pollfd *pf = calloc((size_t)o->jobs, sizeof(*pf));
	struct tally t = { 0 };
	int next = 0, running = 0;

	if (!kids || !pf)
		cli_die(EXIT_FAIL, "out of memory");
	for (int k = 0; k < o->jobs; k++)
		kids[k].pid = 0;
	while (next < n || running) {
		int np = 0;

		for (int k = 0; k < o->jobs && next < n; k++)
			if (!kids[k].pid) {
				start(&kids[k], next++, srcs, dsts, job, arg);
				running++;
			}
		for (int k = 0; k < o->jobs; k++)
			if (kids[k].pid && kids[k].fd >= 0)
				pf[np++] = (struct pollfd){ kids[k].fd, POLLIN, 0 };
		if (np && poll(pf, (nfds_t)np, -1) < 0 && errno != EINTR)
			cli_die(EXIT_FAIL, "poll failed: %s", strerror(errno));
		for (int k = 0; k < o->jobs; k++) {
			struct child *c = &kids[k];
			int status;

			for (int i = 0; c->pid && c->fd >= 0 && i < np; i++)
				if (pf[i].fd == c->fd && pf[i].revents)
					drain(c);
			if (!c->pid || c->fd >= 0)
				continue;
			while (waitpid(c->pid, &status, 0) < 0)
				if (errno != EINTR)
					cli_die(EXIT_FAIL, "wait failed: %s",
						strerror(errno));
			report(c, status, srcs, dsts, o, &t);
			c->pid = 0;
			running--;
		}
	}
	if (!o->json)
		printf("%d image%s: %d %s, %d with warnings, %d skipped, %d failed\n",
		       n, n == 1 ? "" : "s", t.done, o->done_word, t.warned,
		       t.skipped, t.failed);
	free(kids);
	free(pf);
	return t.failed ? EXIT_FAIL : EXIT_OK;
}
