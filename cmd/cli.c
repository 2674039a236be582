/* cli.c: shared front-end code: messages, popt parsing, opening images, sizes, progress. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "opts.h"

#ifndef IMG_VERSION
#error "IMG_VERSION is not defined: the Makefile passes it (VERSION=...)"
#endif

const char *cli_prog = "img";
const char *cli_format;
const char *cli_key_file;
int cli_force_share;

struct poptOption cli_image_options[] = {
	{ "format", 'f', POPT_ARG_STRING, &cli_format, 0,
	  "image format (default: probe; raw, qcow, qcow2, qed, add-cow)", "FMT" },
	{ "key-file", 0, POPT_ARG_STRING, &cli_key_file, 0,
	  "password of an AES-encrypted image", "FILE" },
	{ "force-share", 'U', POPT_ARG_NONE, &cli_force_share, 0,
	  "read the image even while another process (a VM) writes it",
	  NULL },
	{ "member", 0, POPT_ARG_STRING, &cli_member, 0,
	  "the member of an archive (tar, zip, cpio, 7z) to read", "NAME" },
	POPT_TABLEEND
};

void cli_refuse_force_share(const char *why)
{
	if (cli_force_share)
		cli_die(EXIT_USAGE, "-U (--force-share) cannot be used %s: it is for read-only use",
			why);
}

void cli_die_open(int code, const char *path, const struct img *img)
{
	/* The image itself is held; a held backing or data file is named
	 * in the detail ("backing file 'b.qcow2': in use by ..."). */
	if (img_errcode(img) == IMG_E_LOCKED &&
	    !strcmp(img_errmsg(img), img_strerror(IMG_E_LOCKED)))
		cli_die(code, "cannot lock '%s': %s", path, img_errmsg(img));
	cli_die(code, "cannot open '%s': %s", path, img_errmsg(img));
}

/* Data written to stdout must reach it: a full disk is an error. */
static void close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		if (errno == EPIPE)
			_exit(EXIT_FAIL);
		fprintf(stderr, "%s: cannot write standard output: %s\n",
			cli_prog, strerror(errno));
		_exit(EXIT_FAIL);
	}
}

void cli_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');

	cli_prog = slash ? slash + 1 : prog;
	atexit(close_stdout);
	cli_signals_init();
}

static void vsay(const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s: %s\n", cli_prog, msg);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

void cli_die(int code, const char *fmt, ...)
{
	va_list ap;

	cli_progress_end();
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(code);
}

/* -V/--version, which every command takes: poptGetNextOpt answers
 * VERSION_VAL, and cli_parse prints the version and exits at once, as
 * popt does for --help. */
enum { VERSION_VAL = 0x7656 };
static struct poptOption version_options[] = {
	{ "version", 'V', POPT_ARG_NONE, NULL, VERSION_VAL,
	  "print the version and exit", NULL },
	POPT_TABLEEND
};

/* The command's table, then the shared -V: with no heading of its own it
 * is listed last in --help, under the command's "Help options:". */
static struct poptOption all_options[] = {
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, NULL, 0, NULL, NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, version_options, 0, NULL, NULL },
	POPT_TABLEEND
};

static void print_version(void)
{
	printf("%s (imgtools) %s\n", cli_prog, IMG_VERSION);
	exit(EXIT_OK);
}

/* The context owns the positional arguments: freed only at exit. */
static poptContext popt_ctx;
static const char **parsed_args;
static const char *args_words;

static void free_popt(void)
{
	poptFreeContext(popt_ctx);
}

const char **cli_parse(int argc, const char **argv,
		       const struct poptOption *opts, const char *args_help,
		       int min, int max, int *nargs)
{
	poptContext ctx;
	const char **args;
	int rc, n = 0;

	all_options[0].arg = (void *)opts;
	ctx = poptGetContext(cli_prog, argc, argv, all_options, 0);
	popt_ctx = ctx;
	poptSetOtherOptionHelp(ctx, args_help);
	while ((rc = poptGetNextOpt(ctx)) > 0)
		if (rc == VERSION_VAL)
			print_version();
	/* Only now: --help and --usage free the context before exiting. */
	atexit(free_popt);
	if (rc < -1)
		cli_die(EXIT_USAGE, "%s: %s (try --help)",
			poptBadOption(ctx, POPT_BADOPTION_NOALIAS),
			poptStrerror(rc));
	args = poptGetArgs(ctx);
	while (args && args[n])
		n++;
	parsed_args = args;
	args_words = args_help;
	cli_check_args(n, min, max);
	*nargs = n;
	return args;
}

/* The name of positional argument i in the usage text ("[OPTION...] SRC
 * DST" names 0 SRC and 1 DST), brackets dropped. */
static const char *arg_name(int i, char *buf, size_t len)
{
	const char *p = args_words ? args_words : "";
	size_t n = 0;

	for (int w = -1; *p; w++) {
		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (!strncmp(p, "[OPTION...]", n)) {
			p += n;
			w--;
			continue;
		}
		if (w + 1 == i)
			break;
		p += n;
		n = 0;
	}
	if (!n)
		return "argument";
	if (*p == '[') {
		p++;
		n -= n >= 2 ? 2 : n;
	}
	snprintf(buf, len, "%.*s", (int)n, p);
	return buf;
}

void cli_check_args(int n, int min, int max)
{
	char name[64];

	if (n < min)
		cli_warn("missing %s", arg_name(n, name, sizeof(name)));
	else if (n > max)
		cli_warn("too many arguments (unexpected '%s')",
			 parsed_args[max]);
	else
		return;
	cli_usage_exit();
}

void cli_usage_exit(void)
{
	poptPrintUsage(popt_ctx, stderr, 0);
	exit(EXIT_USAGE);
}

static uint8_t *read_key(const char *path, size_t *len)
{
	uint8_t *buf = malloc(4097);
	size_t n = 0;
	ssize_t r;
	int fd;

	if (!buf)
		cli_die(EXIT_FAIL, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		cli_die(EXIT_FAIL, "cannot open key file '%s': %s", path,
			strerror(errno));
	while (n < 4097 && (r = read(fd, buf + n, 4097 - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (n > 4096)
		cli_die(EXIT_FAIL, "key file '%s' is too long", path);
	if (n && buf[n - 1] == '\n')
		n--;
	if (!n)
		cli_die(EXIT_FAIL, "key file '%s' is empty", path);
	*len = n;
	return buf;
}

void cli_refuse_stdin(const char *path)
{
	if (!strcmp(path, "-"))
		cli_die(EXIT_FAIL, "cannot read an image from standard input ('-'): %s works on an image file in place",
			cli_prog);
	cli_refuse_packed(path);
}

/* cli_die() exits with images still open: kept reachable from here, they
 * are not reported as leaks by LeakSanitizer (D=1). Never dereferenced. */
static struct img *opened[8];
static unsigned nopened;

struct img *cli_open(const char *path, unsigned flags)
{
	struct img_open_opts o = {
		.format = cli_format,
		.no_backing = !!(flags & CLI_NO_BACKING),
		.metadata_only = !!(flags & CLI_METADATA_ONLY),
		.force_share = cli_force_share,
		.no_writers = !!(flags & CLI_NO_WRITERS),
	};
	struct img *img = img_new();
	uint8_t *key = NULL;

	if (!img)
		cli_die(EXIT_FAIL, "out of memory");
	opened[nopened++ % 8] = img;
	if (cli_key_file) {
		key = read_key(cli_key_file, &o.key_len);
		o.key = key;
	}
	if (!cli_open_source(img, path, &o) &&
	    img_open(img, path, &o) < 0)
		cli_die_open(EXIT_FAIL, path, img);
	free(key);
	return img;
}

int cli_output_json(const char *value)
{
	if (!value || !strcmp(value, "human"))
		return 0;
	if (!strcmp(value, "json"))
		return 1;
	cli_die(EXIT_USAGE, "unknown output format '%s' (human or json)",
		value);
}

int cli_parse_size(const char *s, uint64_t *out)
{
	return img_parse_size(s, out);
}

const char *cli_human_size(uint64_t n, char *buf, size_t len)
{
	static const char *suffix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	int e;

	/* Switch unit once the value reaches 1000 of the smaller one. */
	frexp((double)n / (1000.0 / 1024.0), &e);
	e = (e - 1) / 10;
	if (e < 0)
		e = 0;
	if (e > 6)
		e = 6;
	snprintf(buf, len, "%0.3g %sB", (double)n / (double)(1ULL << (e * 10)),
		 suffix[e]);
	return buf;
}

static int progress_shown;
int cli_show_progress;
static const char *progress_format;

struct poptOption cli_progress_options[] = {
	{ "progress", 0, POPT_ARG_STRING, &progress_format, 0,
	  "progress on stderr: human (as -p) or json (lines a script reads)",
	  "FMT" },
	POPT_TABLEEND
};

void cli_progress_setup(int p_flag, int quiet)
{
	cli_show_progress = p_flag ? CLI_PROGRESS_HUMAN : CLI_PROGRESS_NONE;
	if (progress_format && !strcmp(progress_format, "json"))
		cli_show_progress = CLI_PROGRESS_JSON;
	else if (progress_format && !strcmp(progress_format, "human"))
		cli_show_progress = CLI_PROGRESS_HUMAN;
	else if (progress_format)
		cli_die(EXIT_USAGE, "invalid progress format '%s': human or json",
			progress_format);
	if (quiet)
		cli_show_progress = CLI_PROGRESS_NONE;
}

/* One JSON progress line, at most four a second (and the last always:
 * cli_progress_end repeats it once the writes are done). */
static uint64_t json_done, json_total;
static int json_seen;

static void progress_json(uint64_t done, uint64_t total, int force)
{
	char t[24] = "null";    /* total 0: not known (a stream) */

	static double last = -1;
	struct timespec ts;
	double now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec + ts.tv_nsec / 1e9;
	json_done = done;
	json_total = total;
	json_seen = 1;
	if (!force && (done < total || !total) && last >= 0 && now - last < 0.25)
		return;
	last = now;
	if (total || !done)
		snprintf(t, sizeof(t), "%llu", (unsigned long long)total);
	fprintf(stderr, "{\"done\": %llu, \"total\": %s, \"bytes_written\": %llu}\n",
		(unsigned long long)done, t,
		(unsigned long long)img_bytes_written());
	fflush(stderr);
}

void cli_progress(uint64_t done, uint64_t total, void *arg)
{
	static int last = -1;
	static uint64_t last_mib = UINT64_MAX;
	int pct = total ? (int)(done * 100 / total) : 100;

	(void)arg;
	cli_progress_note(done, total);
	if (cli_show_progress == CLI_PROGRESS_JSON)
		progress_json(done, total, 0);
	if (cli_show_progress != CLI_PROGRESS_HUMAN)
		return;
	if (!total && done) {
		/* a stream, whose length is known at its end: bytes so far */
		char h[32];

		if (done >> 20 == last_mib)
			return;
		last_mib = done >> 20;
		progress_shown = 1;
		fprintf(stderr, "\r    (%s)   ", cli_human_size(done, h, sizeof(h)));
		fflush(stderr);
		return;
	}
	if (pct == last)
		return;
	last = pct;
	progress_shown = 1;
	fprintf(stderr, "\r    (%3d.00/100%%)", pct);
	fflush(stderr);
}

void cli_progress_end(void)
{
	if (cli_show_progress == CLI_PROGRESS_JSON && json_seen)
		progress_json(json_done, json_total, 1);
	if (progress_shown) {
		fputc('\n', stderr);
		progress_shown = 0;
	}
}

void cli_list_options(const struct img_opt_desc *d)
{
	static const char *type[] = { "size", "num", "bool (on/off)", "str" };

	printf("Supported options:\n");
	for (; d->name; d++) {
		printf("  %s=<%s> - %s", d->name, type[d->type], d->help);
		if (d->choices) {
			printf(" (");
			for (const char *const *c = d->choices; *c; c++)
				printf("%s%s", c == d->choices ? "" : ", ", *c);
			printf(")");
		}
		if (d->def)
			printf(" [default %s]", d->def);
		printf("\n");
	}
}
