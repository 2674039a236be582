/* img-demote: strip features in place so that older readers open the image; --list says what it uses and what removing it costs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

#define MAX_ONLY 16

static const char *output;
static int dry_run, quiet, progress, list;
static char **features;             /* --feature, as given (popt's) */
static const char *only[MAX_ONLY + 1];
static int nonly;

static struct poptOption opts_table[] = {
	{ "list", 0, POPT_ARG_NONE, &list, 0,
	  "list the features the image uses, their class and the cost of removing them",
	  NULL },
	{ "feature", 0, POPT_ARG_ARGV, &features, 0,
	  "remove only this feature (as --list names it); may be repeated",
	  "NAME" },
	{ "dry-run", 'n', POPT_ARG_NONE, &dry_run, 0,
	  "report what would be done and how much the file grows, write nothing",
	  NULL },
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

static const char *class_name(enum img_feature_class c)
{
	switch (c) {
	case IMG_FEATURE_INCOMPATIBLE: return "incompatible";
	case IMG_FEATURE_COMPATIBLE: return "compatible";
	default: return "autoclear";
	}
}

static void add_feature(const char *name)
{
	const char *const *p;

	for (p = img_demote_feature_names(); *p; p++)
		if (!strcmp(*p, name))
			break;
	if (!*p)
		cli_die(EXIT_USAGE, "unknown feature '%s' (see img-demote --list; img-demote(1) names them all)",
			name);
	if (nonly == MAX_ONLY)
		cli_die(EXIT_USAGE, "too many --feature options");
	only[nonly++] = *p;
}

static void print_list(const struct img_demote_result *r)
{
	char a[32], b[32];

	if (!r->n) {
		printf("No features to remove.\n");
		return;
	}
	printf("%-20s %-13s %-9s %10s %12s %12s\n", "FEATURE", "CLASS",
	       "REMOVABLE", "ENTRIES", "BYTES", "GROWTH");
	for (int i = 0; i < r->n; i++) {
		const struct img_feature *f = &r->f[i];

		printf("%-20s %-13s %-9s %10llu %12s %12s\n", f->name,
		       class_name(f->cls), f->removable ? "yes" : "no",
		       (unsigned long long)f->entries,
		       cli_human_size(f->bytes, a, sizeof(a)),
		       cli_human_size(f->growth, b, sizeof(b)));
		if (f->note[0])
			printf("  %s: %s\n", f->name, f->note);
		if (!f->removable && f->why_not)
			printf("  %s: cannot be removed: %s\n", f->name,
			       f->why_not);
	}
}

/* add-cow: no cluster reads from the backing file any more (nothing
 * was left to remove, or what was is removed). */
static int stands_alone(const struct img_demote_result *r)
{
	for (int i = 0; i < r->n; i++)
		if (!r->f[i].removed)
			return 0;
	return 1;
}

static void print_human(const struct img_demote_result *r, struct img *img)
{
	char a[32], b[32];
	int any = 0;

	if (r->oldest) {
		printf("'%s' is a %s image, already the oldest form: nothing to do.\n",
		       img_path(img), img_format(img));
		return;
	}
	if (list) {
		print_list(r);
		return;
	}
	for (int i = 0; i < r->n; i++) {
		const struct img_feature *f = &r->f[i];

		if (r->dry_run ? !f->removable : !f->removed)
			continue;
		printf("%s %s%s%s\n", r->dry_run ? "Would remove" : "Removed",
		       f->name, f->note[0] ? ": " : "", f->note);
		any = 1;
	}
	if (!any)
		printf("Nothing to do.\n");
	if (strcmp(r->version_before, r->version_after))
		printf("Version: %s -> %s\n", r->version_before, r->version_after);
	printf("File size: %s -> %s%s\n",
	       cli_human_size(r->file_size_before, a, sizeof(a)),
	       cli_human_size(r->file_size_after, b, sizeof(b)),
	       r->dry_run ? " (estimate)" : "");
	if (r->standalone && !r->dry_run && stands_alone(r))
		printf("'%s' now holds the whole disk: '%s' and its backing file are no longer needed.\n",
		       r->standalone, img_path(img));
}

static void print_json(const struct img_demote_result *r, struct img *img)
{
	struct json j;

	json_init(&j, stdout);
	json_object(&j, NULL);
	json_str(&j, "filename", img_path(img));
	json_str(&j, "format", img_format(img));
	json_bool(&j, "oldest", r->oldest);
	json_bool(&j, "dry-run", r->dry_run);
	if (r->version_before) {
		json_str(&j, "version-before", r->version_before);
		json_str(&j, "version-after", r->version_after);
	}
	json_array(&j, "features");
	for (int i = 0; i < r->n; i++) {
		const struct img_feature *f = &r->f[i];

		json_object(&j, NULL);
		json_str(&j, "name", f->name);
		json_str(&j, "class", class_name(f->cls));
		json_bool(&j, "removable", f->removable);
		if (f->why_not)
			json_str(&j, "reason", f->why_not);
		json_uint(&j, "entries", f->entries);
		json_uint(&j, "bytes", f->bytes);
		json_uint(&j, "growth", f->growth);
		json_bool(&j, "removed", f->removed);
		if (f->note[0])
			json_str(&j, "note", f->note);
		json_end_object(&j);
	}
	json_end_array(&j);
	json_uint(&j, "file-size-before", r->file_size_before);
	json_uint(&j, "file-size-after", r->file_size_after);
	if (r->standalone) {
		json_str(&j, "image-file", r->standalone);
		json_bool(&j, "standalone", !r->dry_run && stands_alone(r));
	}
	json_end_object(&j);
	json_done(&j);
}

static void say(const char *line, void *arg)
{
	(void)arg;
	if (!quiet)
		fprintf(stderr, "%s\n", line);
}

static struct img *open_for_demote(const char *path, int writable)
{
	struct img_open_opts o = {
		.format = cli_format, .check = 1, .metadata_only = 1,
		.no_backing = 1, .writable = writable,
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

int main(int argc, const char **argv)
{
	struct img_demote_result res;
	struct img_demote_opts o = { 0 };
	const char **args;
	struct img *img;
	int nargs, json, ret;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, opts_table, "[OPTION...] IMAGE", 1, 1,
			 &nargs);
	for (char **p = features; p && *p; p++)
		add_feature(*p);
	for (char **p = features; p && *p; p++)
		free(*p);
	free(features);
	json = output ? cli_output_json(output) : 0;
	if (list && nonly)
		cli_die(EXIT_USAGE, "--list and --feature cannot be used together");
	if (!dry_run && !list)
		cli_refuse_force_share("without --list or --dry-run");
	o.list = list;
	o.dry_run = dry_run;
	o.only = nonly ? only : NULL;
	o.progress = cli_progress;
	o.msg = say;
	cli_progress_setup(progress, quiet);
	if (!dry_run && !list) {
		/* in place: a signal stops the work at a safe point */
		cli_signals_defer();
		o.cancel = &cli_cancel;
	}
	img = open_for_demote(args[0], !dry_run && !list);
	ret = img_demote(img, &o, &res);
	if (ret == -ECANCELED || (ret == 0 && cli_cancel))
		cli_interrupted("'%s' is consistent; run img-demote again to finish",
				args[0]);
	cli_progress_end();
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot %s '%s': %s",
			list ? "list the features of" : "demote", args[0],
			img_errmsg(img));
	if (!quiet) {
		if (json)
			print_json(&res, img);
		else
			print_human(&res, img);
	}
	img_free(img);
	return EXIT_OK;
}
