/* img-convert: convert an image to another format (for now: raw, to a file or stdout). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"

static const char *out_format;
static const char *sparse_size;
static int progress, quiet, durable;

static struct poptOption options[] = {
	{ NULL, 'O', POPT_ARG_STRING, &out_format, 0,
	  "output format (raw)", "FMT" },
	{ NULL, 'S', POPT_ARG_STRING, &sparse_size, 0,
	  "zero runs of at least SIZE become holes (default 4k, 0 = off)",
	  "SIZE" },
	{ NULL, 'p', POPT_ARG_NONE, &progress, 0,
	  "show progress on a terminal", NULL },
	{ NULL, 'q', POPT_ARG_NONE, &quiet, 0, "quiet", NULL },
	{ "sync", 0, POPT_ARG_NONE, &durable, 0,
	  "make the output durable (fsync) before it appears", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Source options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* The temporary output, removed if we die or are interrupted. */
static struct img_outfile out;

static void on_signal(int sig)
{
	img_outfile_abort(&out);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
}

static void cleanup(void)
{
	img_outfile_abort(&out);
}

int main(int argc, const char **argv)
{
	const char **args;
	struct img *img;
	uint64_t gran = 4096;
	int nargs, fd, ret, to_stdout;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, options, "[OPTION...] SRC DST", 2, 2, &nargs);
	if (!out_format)
		out_format = "raw";
	if (strcmp(out_format, "raw"))
		cli_die(EXIT_USAGE, "output format '%s' is not supported yet (raw only)",
			out_format);
	if (sparse_size && (cli_parse_size(sparse_size, &gran) < 0 ||
			    gran % 512 || gran > (16u << 20)))
		cli_die(EXIT_USAGE, "invalid sparse size '%s': a multiple of 512 up to 16M, or 0",
			sparse_size);
	to_stdout = !strcmp(args[1], "-");
	if (to_stdout && isatty(STDOUT_FILENO))
		cli_die(EXIT_USAGE, "refusing to write binary data to a terminal");
	img = cli_open(args[0], 0);
	if (to_stdout) {
		fd = STDOUT_FILENO;
	} else {
		ret = img_outfile_create(&out, args[1]);
		if (ret < 0)
			cli_die(EXIT_FAIL, "cannot create '%s': %s", args[1],
				strerror(-ret));
		atexit(cleanup);
		catch_signals();
		fd = out.fd;
	}
	struct img_convert_opts co = {
		.zero_gran = gran,
		.progress = progress && !quiet ? cli_progress : NULL,
	};
	ret = img_export_raw(img, fd, &co);
	cli_progress_end();
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot convert '%s': %s", args[0],
			img_errmsg(img));
	if (!to_stdout) {
		ret = img_outfile_commit(&out, durable);
		if (ret < 0)
			cli_die(EXIT_FAIL, "cannot write '%s': %s", args[1],
				strerror(-ret));
	}
	img_free(img);
	return EXIT_OK;
}
