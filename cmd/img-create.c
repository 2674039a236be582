/* img-create: create a new, empty image of a format, as `qemu-img create` does. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opts.h"
#include "outfile.h"

static const char *format = "raw";
static const char **options;   /* every -o, in order */
static const char *backing, *backing_fmt;
static int unsafe, quiet, durable;

static struct poptOption opts_table[] = {
	{ "format", 'f', POPT_ARG_STRING, &format, 0,
	  "format of the new image (raw, qcow, qcow2, qed, add-cow; default raw)",
	  "FMT" },
	{ NULL, 'o', POPT_ARG_ARGV, &options, 0,
	  "format options, name=value,...; -o help lists them", "OPTIONS" },
	{ NULL, 'b', POPT_ARG_STRING, &backing, 0,
	  "backing file (relative names are relative to FILE)", "BACKING" },
	{ NULL, 'F', POPT_ARG_STRING, &backing_fmt, 0,
	  "format of the backing file", "BACKING_FMT" },
	{ NULL, 'u', POPT_ARG_NONE, &unsafe, 0,
	  "do not open the backing file (SIZE is then needed)", NULL },
	{ NULL, 'q', POPT_ARG_NONE, &quiet, 0,
	  "do not print the \"Formatting\" line", NULL },
	{ "sync", 0, POPT_ARG_NONE, &durable, 0,
	  "make the new image durable (fsync) before it appears", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* -b, -F and SIZE are options like any other, set last so they win. */
static void set_option(struct img_opts *o, const char *name,
		       const char *value)
{
	char err[256];

	if (value && img_opts_set(o, name, value, err, sizeof(err)) < 0)
		cli_die(EXIT_USAGE, "%s", err);
}

/* The temporary file, removed on every way out but the final rename;
 * and the image, reachable from here when cli_die() exits (D=1: not a
 * LeakSanitizer leak). */
static struct img_outfile out = { .fd = -1 };
static struct img *img;

static void cleanup(void)
{
	img_outfile_abort(&out);
}

/* As img_create, but with the temporary file ours, so that a signal
 * (preallocating a big image takes a while) removes it too. */
static void create(const char *path, struct img_opts *o)
{
	int ret;

	if (!img_create_options(format))
		cli_die(EXIT_FAIL, "cannot create '%s': format '%s' cannot be created",
			path, format);
	ret = img_outfile_create(&out, path);
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", path, strerror(-ret));
	atexit(cleanup);
	cli_signals_cleanup(cleanup);
	if (img_create_fd(img, path, out.fd, format, o,
			  unsafe ? IMG_CREATE_UNSAFE : 0) < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", path,
			img_errmsg(img));
	ret = img_outfile_commit(&out, durable);
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot create '%s': %s", path, strerror(-ret));
}

int main(int argc, const char **argv)
{
	const struct img_opt_desc *desc;
	struct img_opts o;
	char err[256], line[2048];
	const char **args;
	int nargs;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, opts_table, "[OPTION...] FILE [SIZE]", 0,
			 2, &nargs);
	desc = img_create_options(format);
	if (!desc)
		cli_die(EXIT_USAGE, "unknown format '%s' (raw, qcow, qcow2, qed, add-cow)",
			format);
	for (int i = 0; options && options[i]; i++) {
		if (!strcmp(options[i], "help")) {
			cli_list_options(desc);
			return EXIT_OK;
		}
	}
	cli_check_args(nargs, 1, 2);
	img_opts_init(&o, desc);
	for (int i = 0; options && options[i]; i++)
		if (img_opts_parse(&o, options[i], err, sizeof(err)) < 0)
			cli_die(EXIT_USAGE, "%s", err);
	if (backing_fmt && !backing && !img_opt_isset(&o, "backing_file"))
		cli_die(EXIT_USAGE, "-F needs a backing file (-b)");
	set_option(&o, "backing_file", backing);
	set_option(&o, "backing_fmt", backing_fmt);
	if (nargs == 2) {
		uint64_t size;
		if (img_parse_size(args[1], &size) < 0)
			cli_die(EXIT_USAGE, "invalid size '%s' (e.g. 64M, 10G, 1T)",
				args[1]);
		set_option(&o, "size", args[1]);
	}
	img = img_new();
	if (!img)
		cli_die(EXIT_FAIL, "out of memory");
	create(args[0], &o);
	if (!quiet) {
		img_create_describe(format, &o, line, sizeof(line));
		printf("Formatting '%s', %s\n", args[0], line);
	}
	img_free(img);
	img_opts_free(&o);
	return EXIT_OK;
}
