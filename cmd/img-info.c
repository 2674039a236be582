/* img-info: what scripts ask first about an image: format, sizes, backing file, features. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json.h"

static const char *output;
static int backing_chain;

static struct poptOption options[] = {
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "output format: human (default) or json", "human|json" },
	{ "backing-chain", 0, POPT_ARG_NONE, &backing_chain, 0,
	  "describe every image of the backing chain", NULL },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Image options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* The members in any order: the writer prints them in qemu-img's
 * (json_qemu_order). */
static void json_info(struct json *j, const struct img *img)
{
	struct img_info in;

	img_get_info(img, &in);
	json_object(j, NULL);
	json_str(j, "filename", img_path(img));
	json_str(j, "format", in.format);
	json_uint(j, "virtual-size", in.virtual_size);
	json_uint(j, "actual-size", in.actual_size);
	json_bool(j, "dirty-flag", in.dirty);
	if (in.cluster_size)
		json_uint(j, "cluster-size", in.cluster_size);
	if (in.encryption)
		json_bool(j, "encrypted", 1);
	if (in.backing_file) {
		json_str(j, "backing-filename", in.backing_file);
		if (in.backing_path)
			json_str(j, "full-backing-filename", in.backing_path);
		if (in.backing_format)
			json_str(j, "backing-filename-format",
				 in.backing_format);
	}
	if (in.nsnapshots) {
		json_array(j, "snapshots");
		for (int i = 0; i < in.nsnapshots; i++) {
			const struct img_snapshot *s = &in.snapshots[i];
			json_object(j, NULL);
			json_str(j, "id", s->id);
			json_str(j, "name", s->name);
			json_uint(j, "vm-state-size", s->vm_state_size);
			json_uint(j, "date-sec", s->date_sec);
			json_uint(j, "date-nsec", s->date_nsec);
			json_uint(j, "vm-clock-sec", s->vm_clock_nsec / 1000000000);
			json_uint(j, "vm-clock-nsec", s->vm_clock_nsec % 1000000000);
			if (s->has_icount)
				json_uint(j, "icount", s->icount);
			json_end_object(j);
		}
		json_end_array(j);
	}
	/* Only formats with properties have the object, as with qemu-img. */
	if (in.nprops) {
		json_object(j, "format-specific");
		json_str(j, "type", in.format);
		json_object(j, "data");
		for (int i = 0; i < in.nprops; i++) {
			const struct img_prop *p = &in.props[i];
			if (p->type == IMG_PROP_STR)
				json_str(j, p->key, p->str);
			else if (p->type == IMG_PROP_BOOL)
				json_bool(j, p->key, (int)p->num);
			else
				json_int(j, p->key, p->num);
		}
		if (in.encryption) {
			json_object(j, "encrypt");
			json_str(j, "format", in.encryption);
			json_end_object(j);
		}
		if (in.nbitmaps) {
			json_array(j, "bitmaps");
			for (int i = 0; i < in.nbitmaps; i++) {
				const struct img_bitmap *b = &in.bitmaps[i];
				json_object(j, NULL);
				json_array(j, "flags");
				if (b->in_use)
					json_str(j, NULL, "in-use");
				if (b->autom)
					json_str(j, NULL, "auto");
				json_end_array(j);
				json_str(j, "name", b->name);
				json_uint(j, "granularity", b->granularity);
				json_end_object(j);
			}
			json_end_array(j);
		}
		json_end_object(j);
		json_end_object(j);
	}
	json_end_object(j);
}

static void human_snapshots(const struct img_info *in)
{
	char size[32], date[32], clock[32], icount[32];

	printf("Snapshot list:\n%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG",
	       "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (int i = 0; i < in->nsnapshots; i++) {
		const struct img_snapshot *s = &in->snapshots[i];
		time_t t = s->date_sec;
		struct tm tm;
		uint64_t ms = s->vm_clock_nsec / 1000000;

		cli_human_size(s->vm_state_size, size, sizeof(size));
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S",
			 localtime_r(&t, &tm));
		snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02d:%02d.%03d",
			 ms / 3600000, (int)(ms / 60000 % 60),
			 (int)(ms / 1000 % 60), (int)(ms % 1000));
		if (s->has_icount)
			snprintf(icount, sizeof(icount), "%" PRIu64, s->icount);
		else
			icount[0] = 0;
		printf("%-9s %-16s %8s%20s%13s%11s\n", s->id, s->name, size,
		       date, clock, icount);
	}
}

/* One line "    key: value" of the format specific information, the
 * key spelt with spaces as qemu-img spells it. */
static void human_prop(const struct img_prop *p)
{
	char key[64];

	snprintf(key, sizeof(key), "%s", p->key);
	for (char *c = key; *c; c++)
		if (*c == '-')
			*c = ' ';
	if (p->type == IMG_PROP_STR)
		printf("    %s: %s\n", key, p->str);
	else if (p->type == IMG_PROP_BOOL)
		printf("    %s: %s\n", key, p->num ? "true" : "false");
	else
		printf("    %s: %" PRId64 "\n", key, p->num);
}

static void human_bitmaps(const struct img_info *in)
{
	printf("    bitmaps:\n");
	for (int i = 0; i < in->nbitmaps; i++) {
		const struct img_bitmap *bm = &in->bitmaps[i];
		int k = 0;

		printf("        [%d]:\n            flags:\n", i);
		if (bm->in_use)
			printf("                [%d]: in-use\n", k++);
		if (bm->autom)
			printf("                [%d]: auto\n", k++);
		printf("            name: %s\n            granularity: %" PRIu32 "\n",
		       bm->name, bm->granularity);
	}
}

/* An entry of the format specific information: a property (index >= 0),
 * the encryption or the bitmaps, in the order json_info writes them. */
enum { FS_ENCRYPT = -1, FS_BITMAPS = -2 };
struct fs_item {
	unsigned rank;
	int seq, index;
};

/* As json_qemu_order sorts: by rank, the later written first. */
static int by_rank(const void *a, const void *b)
{
	const struct fs_item *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return y->seq - x->seq;
}

static void add_item(struct fs_item *item, int *n, const char *key, int index)
{
	item[*n] = (struct fs_item){ json_qemu_rank(key), *n, index };
	(*n)++;
}

/*
 * qemu-img prints the format specific information from the same hash
 * table as the JSON "data" object, so in the same order: "bitmaps:" comes
 * after "lazy refcounts", "encrypt:" after "data file".
 */
static void human_format_specific(const struct img_info *in)
{
	struct fs_item *item = calloc((size_t)in->nprops + 2, sizeof(*item));
	int n = 0;

	if (!item)
		cli_die(EXIT_FAIL, "out of memory");
	for (int i = 0; i < in->nprops; i++)
		add_item(item, &n, in->props[i].key, i);
	if (in->encryption)
		add_item(item, &n, "encrypt", FS_ENCRYPT);
	if (in->nbitmaps)
		add_item(item, &n, "bitmaps", FS_BITMAPS);
	qsort(item, (size_t)n, sizeof(*item), by_rank);
	printf("Format specific information:\n");
	for (int i = 0; i < n; i++) {
		if (item[i].index == FS_ENCRYPT)
			printf("    encrypt:\n        format: %s\n", in->encryption);
		else if (item[i].index == FS_BITMAPS)
			human_bitmaps(in);
		else
			human_prop(&in->props[item[i].index]);
	}
	free(item);
}

static void human_info(const struct img *img)
{
	struct img_info in;
	char a[32], b[32];

	img_get_info(img, &in);
	printf("image: %s\nfile format: %s\n", img_path(img), in.format);
	printf("virtual size: %s (%" PRIu64 " bytes)\n",
	       cli_human_size(in.virtual_size, a, sizeof(a)), in.virtual_size);
	printf("disk size: %s\n", cli_human_size(in.actual_size, b, sizeof(b)));
	if (in.encryption)
		printf("encrypted: yes\n");
	if (in.cluster_size)
		printf("cluster_size: %" PRIu32 "\n", in.cluster_size);
	if (in.dirty)
		printf("cleanly shut down: no\n");
	if (in.backing_file) {
		printf("backing file: %s", in.backing_file);
		if (in.backing_path && strcmp(in.backing_path, in.backing_file))
			printf(" (actual path: %s)", in.backing_path);
		printf("\n");
		if (in.backing_format)
			printf("backing file format: %s\n", in.backing_format);
	}
	if (in.nsnapshots)
		human_snapshots(&in);
	if (in.nprops)
		human_format_specific(&in);
}

int main(int argc, const char **argv)
{
	const char **args;
	struct img *img;
	struct json j;
	int json, nargs;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, options, "[OPTION...] IMAGE", 1, 1, &nargs);
	json = cli_output_json(output);
	/* Without --backing-chain a missing backing file is no reason to fail. */
	img = cli_open(args[0], CLI_METADATA_ONLY |
			       (backing_chain ? 0 : CLI_NO_BACKING));
	json_init(&j, stdout);
	json_qemu_order(&j);
	if (json && backing_chain)
		json_array(&j, NULL);
	for (struct img *l = img; l; l = backing_chain ? img_backing(l) : NULL) {
		if (json) {
			json_info(&j, l);
		} else {
			if (l != img)
				printf("\n");
			human_info(l);
		}
	}
	if (json) {
		if (backing_chain)
			json_end_array(&j);
		json_done(&j);
	}
	img_free(img);
	return EXIT_OK;
}
