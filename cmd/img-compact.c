/* img-compact: shrink an image in place: zero clusters stop being stored and the file gives their space back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const char *output, *zero_size;
static int dry_run, quiet, progress;

static struct poptOption opts_table[] = {
	{ "dry-run", 'n', POPT_ARG_NONE, &dry_run, 0,
	  "report what would be freed, write nothing", NULL },
	{ NULL, 'S', POPT_ARG_STRING, &zero_size, 0,
	  "zero detection unit where the format has subclusters (default: whole clusters)",
	  "SIZE" },
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "output format: human (default) or json", "FMT" },
	{ NULL, 'q', POPT_ARG_NONE, &quiet, 0,
	  "print nothing on standard output", NULL },
	{ NULL, 'p', POPT_ARG_NONE, &progress, 0,
	  "show progress on stderr", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_progress_options, 0, NULL,
	  NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Image options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

static struct img *open_for_compact(const char *path)
{
	struct img_open_opts o = {
		.format = cli_format, .check = 1, .metadata_only = 1,
		.no_backing = 1, .writable = !dry_run,
		.force_share = cli_force_share,
	};
	struct img *img = img_new();

	cli_refuse_stdin(path);
	if (!img)
		cli_die(EXIT_FAIL, "out of memory");
	if (img_open(img, path, &o) < 0)
		cli_die_open(EXIT_FAIL, path, img);
	return img;
}

static void print_human(const struct img_compact_result *r)
{
	char a[32], b[32], c[32], d[32];

	printf("%s\n", r->dry_run ? "Dry run: nothing was written." :
	       "Compacted.");
	printf("Clusters scanned: %llu\n",
	       (unsigned long long)r->clusters_scanned);
	printf("Zero clusters found: %llu\n",
	       (unsigned long long)r->zero_clusters);
	printf("Zero clusters %s: %llu\n", r->dry_run ? "to free" : "freed",
	       (unsigned long long)r->clusters_freed);
	if (r->clusters_kept)
		printf("Zero clusters kept: %llu\n",
		       (unsigned long long)r->clusters_kept);
	if (r->leaks)
		printf("Leaked clusters found: %llu\n",
		       (unsigned long long)r->leaks);
	printf("Bytes %s: %llu (%s)\n", r->dry_run ? "to free" : "freed",
	       (unsigned long long)r->bytes_freed,
	       cli_human_size(r->bytes_freed, a, sizeof(a)));
	printf("File size: %s -> %s%s\n",
	       cli_human_size(r->file_size_before, b, sizeof(b)),
	       cli_human_size(r->file_size_after, c, sizeof(c)),
	       r->dry_run ? " (estimate)" : "");
	if (r->file_size_peak > r->file_size_before)
		printf("Peak file size: %s (+%llu bytes during the run)\n",
		       cli_human_size(r->file_size_peak, d, sizeof(d)),
		       (unsigned long long)(r->file_size_peak -
					    r->file_size_before));
}

static void print_json(const struct img_compact_result *r, struct img *img)
{
	struct json j;

	json_init(&j, stdout);
	json_object(&j, NULL);
	json_str(&j, "filename", img_path(img));
	json_str(&j, "format", img_format(img));
	json_bool(&j, "dry-run", r->dry_run);
	json_uint(&j, "cluster-size", r->cluster_size);
	json_uint(&j, "clusters-scanned", r->clusters_scanned);
	json_uint(&j, "zero-clusters", r->zero_clusters);
	json_uint(&j, "clusters-freed", r->clusters_freed);
	json_uint(&j, "clusters-kept", r->clusters_kept);
	json_uint(&j, "leaks", r->leaks);
	json_uint(&j, "bytes-freed", r->bytes_freed);
	json_uint(&j, "file-size-before", r->file_size_before);
	json_uint(&j, "file-size-after", r->file_size_after);
	json_uint(&j, "file-size-peak", r->file_size_peak);
	json_end_object(&j);
	json_done(&j);
}

int main(int argc, const char **argv)
{
	struct img_compact_result res;
	struct img_compact_opts o = { 0 };
	const char **args;
	struct img *img;
	int nargs, json, ret;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, opts_table, "[OPTION...] IMAGE", 1, 1,
			 &nargs);
	json = output ? cli_output_json(output) : 0;
	if (zero_size && cli_parse_size(zero_size, &o.zero_gran) < 0)
		cli_die(EXIT_USAGE, "invalid -S '%s': a size like 4k", zero_size);
	if (!dry_run)
		cli_refuse_force_share("without --dry-run");
	o.dry_run = dry_run;
	o.progress = cli_progress;
	cli_progress_setup(progress, quiet);
	if (!dry_run) {
		/* in place: a signal stops the work at a safe point */
		cli_signals_defer();
		o.cancel = &cli_cancel;
	}
	img = open_for_compact(args[0]);
	ret = img_compact(img, &o, &res);
	if (ret == -ECANCELED || (ret == 0 && cli_cancel))
		cli_interrupted("'%s' is consistent; run img-compact again to finish",
				args[0]);
	if (ret < 0) {
		cli_progress_end();
		cli_die(EXIT_FAIL, "cannot compact '%s': %s", args[0],
			img_errmsg(img));
	}
	cli_progress_end();
	if (!quiet) {
		if (json)
			print_json(&res, img);
		else
			print_human(&res);
	}
	img_free(img);
	return EXIT_OK;
}
