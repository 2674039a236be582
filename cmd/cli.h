/* cli.h: what the img-* front ends share: exit codes, messages, option tables, opening images. */
#ifndef IMG_CLI_H
#define IMG_CLI_H

#include <popt.h>
#include <stdint.h>
#include <stdio.h>

#include "img.h"

/* Exit codes of every command (img-check adds its own, qemu-img's). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,      /* the work could not be done */
	EXIT_USAGE = 2,     /* bad options or arguments */
	EXIT_NO_CHECKS = 63, /* img-check: the format has no checks (qemu-img's) */
};

extern const char *cli_prog;

/* Set the program name; arrange for stdout to be checked at exit. */
void cli_init(const char *prog);
/* "prog: message" on stderr; die() then exits with code. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/*
 * Parse argv with the command's popt table; on a bad option say so and
 * exit EXIT_USAGE. Returns the positional arguments (NULL-terminated) and
 * their count in *nargs, which must lie in [min, max].
 */
const char **cli_parse(int argc, const char **argv,
		       const struct poptOption *opts, const char *args_help,
		       int min, int max, int *nargs);

/* For a command that counts its arguments after cli_parse: say which is
 * missing ("missing DST") or that there are too many, print the usage
 * and exit EXIT_USAGE; return if n lies in [min, max]. */
void cli_check_args(int n, int min, int max);

/* After cli_parse: print the one-line usage and exit EXIT_USAGE. */
void cli_usage_exit(void) __attribute__((noreturn));

/* Options every image-reading command takes: -f FMT, --key-file F,
 * -U (--force-share: for read-only opens; a command that writes refuses
 * it with cli_refuse_force_share). */
extern struct poptOption cli_image_options[];
extern const char *cli_format;
extern const char *cli_key_file;
extern int cli_force_share;

/* Die with a usage error if -U was given: the command writes, why says
 * how ("with -r"). */
void cli_refuse_force_share(const char *why);

/* Die with one line for a failed img_open of path: "cannot lock" when
 * another process holds the image, else "cannot open". */
void cli_die_open(int code, const char *path, const struct img *img)
	__attribute__((noreturn));

/* "-" names standard input, which a command that works on a file in
 * place (img-check, img-compact) refuses: die. */
void cli_refuse_stdin(const char *path);

/* A compressed file or an archive, which a command that works on a file
 * in place cannot edit (and must not take for a raw disk): die. */
void cli_refuse_packed(const char *path);
/* Whether path is read as a stream (compressed, an archive, a pipe):
 * what it holds is known only by reading it all. */
int cli_is_packed(const char *path);

/* --member NAME (cli_image_options): the member of an archive to read. */
extern const char *cli_member;
/* cli_source.c: if path is standard input ("-"), cannot seek, or is a
 * compressed file or an archive, unpack it into a temporary file, open
 * img from that (or die with one line) and return img; else return NULL
 * for an ordinary open. */
struct img_open_opts;
struct img *cli_open_source(struct img *img, const char *path,
			    const struct img_open_opts *o);
/* For img-convert, which converts a raw disk as it comes: if path is
 * such a source holding a raw disk (-f raw, or no image format in its
 * first bytes), and not an archive whose member is to be chosen, the
 * stream, open; *st is the file it comes from. Else NULL: cli_open then opens path, taking over
 * a stream opened here. cli_close_stream closes it. */
struct img_stream;
struct stat;
struct img_stream *cli_open_raw_stream(const char *path, struct stat *st);
void cli_close_stream(void);

/* Open an image with the shared options, or die with a one-line message
 * (cli_refuse_stdin first). */
#define CLI_NO_BACKING     0x1   /* do not open the backing chain */
#define CLI_METADATA_ONLY  0x2   /* no data is read: no key needed */
#define CLI_NO_WRITERS     0x4   /* the data is copied: no other process may
				  * write it meanwhile (a conversion's source) */
struct img *cli_open(const char *path, unsigned flags);

/* `-o help`: the creation options of a format, one per line. */
struct img_opt_desc;
void cli_list_options(const struct img_opt_desc *d);

/* --output=human|json: returns 1 for json, dies on anything else. */
int cli_output_json(const char *value);

/* Sizes like 64M, 10G, 1T, 512 (1024-based suffixes k M G T P E). */
int cli_parse_size(const char *s, uint64_t *out);

/* qemu-img's human sizes: "1 GiB", "196 KiB", "4.5 MiB". */
const char *cli_human_size(uint64_t n, char *buf, size_t len);

/* Progress: the library calls cli_progress always, so that SIGUSR1 can
 * say how far the work is; it draws a bar on stderr when cli_show_progress
 * is CLI_PROGRESS_HUMAN (-p, terminal or not, as qemu-img), or writes JSON
 * lines when it is CLI_PROGRESS_JSON. */
enum { CLI_PROGRESS_NONE, CLI_PROGRESS_HUMAN, CLI_PROGRESS_JSON };
extern int cli_show_progress;
void cli_progress(uint64_t done, uint64_t total, void *arg);
/* --progress=human|json for the commands with -p: human is -p; json
 * writes lines {"done": N, "total": N, "bytes_written": N} on stderr, at
 * most four a second and the last one always. */
extern struct poptOption cli_progress_options[];
/* After parsing: progress as -p (p_flag) and --progress asked, unless -q. */
void cli_progress_setup(int p_flag, int quiet);
void cli_progress_end(void);

/*
 * Signals (cli_signal.c), set up by cli_init for every command. SIGUSR1
 * prints one progress line on stderr and the work goes on; SIGXFSZ is
 * ignored, so that a file size limit is a write error (EFBIG) naming the
 * file. Every other asynchronous signal whose default action ends the
 * process (HUP INT QUIT PIPE ALRM TERM USR2 XCPU VTALRM PROF IO PWR
 * STKFLT, real-time) runs the cleanup function, then ends the process by
 * that same signal, so that the exit status tells. Signals ignored at
 * start (nohup) stay ignored.
 */
void cli_signals_init(void);
/* The cleanup to run on such a signal (async-signal-safe: unlink, close). */
void cli_signals_cleanup(void (*fn)(void));
void cli_progress_note(uint64_t done, uint64_t total);
/*
 * In-place commands: from now on such a signal only sets cli_cancel (its
 * number), which the library polls (the opts' cancel field) at its safe
 * points and answers with -ECANCELED; the command then calls
 * cli_interrupted.
 */
#include <signal.h>
extern volatile sig_atomic_t cli_cancel;
void cli_signals_defer(void);
/* "prog: interrupted by SIGTERM: <message>", cleanup, then die by the
 * signal in cli_cancel. */
void cli_interrupted(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
