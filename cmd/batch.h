/* batch.h: one job per input in child processes, N at a time, a status line each and a summary. */
#ifndef IMG_BATCH_H
#define IMG_BATCH_H

/*
 * A job runs in a child process (forked: it inherits everything parsed so
 * far), which exits with what it returns (or dies on its own): that is the
 * job's status (0 done, 3 done with a
 * warning, BATCH_SKIPPED nothing to do, anything else failed); what it
 * writes on stderr is captured, its last line becoming the status line's
 * reason and the lines before it passed on to our stderr.
 */
#define BATCH_SKIPPED 99

typedef int (*batch_job_fn)(const char *src, const char *dst, void *arg);

struct batch_opts {
	int jobs;               /* children at a time (>= 1) */
	int json;               /* one JSON line per input instead of text */
	const char *done_word;  /* "converted" */
};

/* Run job(srcs[i], dsts[i], arg) for i < n. Returns EXIT_OK, or EXIT_FAIL
 * if any job failed. Status lines and the summary go to stdout. */
int batch_run(const char *const *srcs, char *const *dsts, int n,
	      batch_job_fn job, void *arg, const struct batch_opts *o);

/* DIR/NAME.EXT for src (NAME: its base name less one extension), or NULL
 * when out of memory. */
char *batch_output_name(const char *dir, const char *src, const char *ext);

#endif
