/* img-check: check (and with -r repair) an image's metadata, as `qemu-img check` does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

/* Exit codes, qemu-img's: the state after any repair (and
 * EXIT_NO_CHECKS, 63, for a format without checks: cli.h). */
enum {
	EXIT_CHECK_FAILED = 1,     /* the check could not complete */
	EXIT_CORRUPT = 2,
	EXIT_LEAKS = 3,
};

static const char *repair, *output;
static int quiet, progress;

static struct poptOption opts_table[] = {
	{ NULL, 'r', POPT_ARG_STRING, &repair, 0,
	  "repair: leaks (give leaked space back) or all (also corruptions that need no guessing)",
	  "leaks|all" },
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "output format: human (default) or json", "FMT" },
	{ NULL, 'q', POPT_ARG_NONE, &quiet, 0,
	  "print nothing on standard output (the exit status says it)", NULL },
	{ NULL, 'p', POPT_ARG_NONE, &progress, 0,
	  "show progress on stderr", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_progress_options, 0, NULL,
	  NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Image options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* Problem and repair lines go to standard error, as qemu-img's. */
static void say(const char *line, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

static struct img *open_for_check(const char *path, int writable)
{
	struct img_open_opts o = {
		.format = cli_format, .check = 1, .metadata_only = 1,
		.no_backing = 1, .writable = writable,
		.force_share = cli_force_share,
	};
	struct img *img = img_new();

	cli_refuse_stdin(path);
	if (!img)
		cli_die(EXIT_CHECK_FAILED, "out of memory");
	if (img_open(img, path, &o) < 0)
		cli_die_open(EXIT_CHECK_FAILED, path, img);
	if (!img_can_check(img))
		cli_die(EXIT_NO_CHECKS, "cannot check '%s': the %s format does not support checks",
			path, img_format(img));
	return img;
}

static void run_check(struct img *img, enum img_check_fix fix,
		      struct img_check *res)
{
	struct img_check_opts o = {
		.fix = fix, .msg = say, .progress = cli_progress,
		.cancel = fix ? &cli_cancel : NULL,
	};
	int ret = img_check(img, &o, res);

	cli_progress_end();
	if (ret == -ECANCELED || cli_cancel)
		cli_interrupted("'%s' is consistent; run the repair again to finish",
				img_path(img));
	if (ret < 0)
		cli_die(EXIT_CHECK_FAILED, "cannot check '%s': %s",
			img_path(img), img_errmsg(img));
}

static void print_human(const struct img_check *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%llu errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       (unsigned long long)r->corruptions);
	if (r->leaks)
		printf("\n%llu leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       (unsigned long long)r->leaks);
	if (r->check_errors)
		printf("\n%llu internal errors have occurred during the check.\n",
		       (unsigned long long)r->check_errors);
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n",
		       (unsigned long long)r->image_end_offset);
	if (r->bytes_reclaimed)
		printf("Leaked space given back: %llu bytes\n",
		       (unsigned long long)r->bytes_reclaimed);
}

/* qemu-img 7.2's key order; zero counts are left out, as there. */
static void print_json(const struct img_check *r, struct img *img)
{
	struct json j;

	json_init(&j, stdout);
	json_object(&j, NULL);
	if (r->image_end_offset)
		json_uint(&j, "image-end-offset", r->image_end_offset);
	if (r->compressed_clusters)
		json_uint(&j, "compressed-clusters", r->compressed_clusters);
	if (r->total_clusters)
		json_uint(&j, "total-clusters", r->total_clusters);
	if (r->corruptions)
		json_uint(&j, "corruptions", r->corruptions);
	if (r->corruptions_fixed)
		json_uint(&j, "corruptions-fixed", r->corruptions_fixed);
	json_uint(&j, "check-errors", r->check_errors);
	if (r->leaks)
		json_uint(&j, "leaks", r->leaks);
	if (r->leaks_fixed)
		json_uint(&j, "leaks-fixed", r->leaks_fixed);
	if (r->allocated_clusters)
		json_uint(&j, "allocated-clusters", r->allocated_clusters);
	json_str(&j, "filename", img_path(img));
	json_str(&j, "format", img_format(img));
	if (r->fragmented_clusters)
		json_uint(&j, "fragmented-clusters", r->fragmented_clusters);
	json_end_object(&j);
	json_done(&j);
}

static enum img_check_fix parse_repair(void)
{
	if (!repair)
		return IMG_CHECK_NO_FIX;
	if (!strcmp(repair, "leaks"))
		return IMG_CHECK_FIX_LEAKS;
	if (!strcmp(repair, "all"))
		return IMG_CHECK_FIX_ALL;
	cli_die(EXIT_USAGE, "invalid -r '%s': leaks or all", repair);
}

int main(int argc, const char **argv)
{
	struct img_check res, fixed;
	enum img_check_fix fix;
	const char **args;
	struct img *img;
	int nargs, json;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, opts_table, "[OPTION...] IMAGE", 1, 1,
			 &nargs);
	json = output ? cli_output_json(output) : 0;
	fix = parse_repair();
	if (fix)
		cli_refuse_force_share("with -r");
	cli_progress_setup(progress, quiet);
	if (fix)
		cli_signals_defer();    /* repairs stop at a safe point */
	img = open_for_check(args[0], fix != IMG_CHECK_NO_FIX);
	run_check(img, fix, &res);
	if (fix) {
		/* As qemu-img: say what was repaired, then check again,
		 * read-only, and report that. */
		fixed = res;
		if ((fixed.leaks_fixed || fixed.corruptions_fixed) && !json &&
		    !quiet)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)fixed.leaks_fixed,
			       (unsigned long long)fixed.corruptions_fixed);
		img_free(img);
		img = open_for_check(args[0], 0);
		run_check(img, IMG_CHECK_NO_FIX, &res);
		res.leaks_fixed = fixed.leaks_fixed;
		res.corruptions_fixed = fixed.corruptions_fixed;
		res.bytes_reclaimed = fixed.bytes_reclaimed;
	}
	if (!quiet) {
		if (json)
			print_json(&res, img);
		else
			print_human(&res);
	}
	if (res.check_errors)
		cli_warn("cannot check '%s' completely: %llu errors occurred during the check",
			 img_path(img), (unsigned long long)res.check_errors);
	img_free(img);
	if (res.check_errors)
		return EXIT_CHECK_FAILED;
	if (res.corruptions)
		return EXIT_CORRUPT;
	if (res.leaks)
		return EXIT_LEAKS;
	return EXIT_OK;
}
