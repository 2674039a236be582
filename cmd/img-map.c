/* img-map: print the guest address space of an image as extents, like `qemu-img map`. */
#include <inttypes.h>
#include <stdlib.h>

#include "cli.h"

static const char *output;

static struct poptOption options[] = {
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "output format: human (default) or json", "human|json" },
	{ NULL, 0, POPT_ARG_INCLUDE_TABLE, cli_image_options, 0,
	  "Image options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* One object per line, exactly as qemu-img map --output=json lays it out. */
static void print_json(const struct img_map *m, int first)
{
	printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"depth\": %d, \"present\": %s, \"zero\": %s, \"data\": %s",
	       first ? "[" : ",\n", m->start, m->length, m->depth,
	       m->present ? "true" : "false", m->zero ? "true" : "false",
	       m->data ? "true" : "false");
	if (m->has_offset)
		printf(", \"offset\": %" PRIu64, m->offset);
	printf("}");
}

/* qemu-img prints 0 as "0" and everything else as 0x...: so does "%#x". */
static void print_human(const struct img_map *m)
{
	char mapped[32];

	if (!m->data || m->zero)
		return;
	if (m->has_offset)
		snprintf(mapped, sizeof(mapped), "%#" PRIx64, m->offset);
	else
		snprintf(mapped, sizeof(mapped), "%s",
			 m->compressed ? "compressed" :
			 m->encrypted ? "encrypted" : "-");
	printf("%#-16" PRIx64 "%#-16" PRIx64 "%-16s%s\n", m->start, m->length,
	       mapped, m->file);
}

int main(int argc, const char **argv)
{
	const char **args;
	struct img *img;
	struct img_map m, pend;
	uint64_t off = 0;
	int json, nargs, ret, first = 1, have_pend = 0;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, options, "[OPTION...] IMAGE", 1, 1, &nargs);
	json = cli_output_json(output);
	img = cli_open(args[0], 0);
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	while ((ret = img_map_next(img, off, img_size(img) - off, &m)) > 0) {
		off = m.start + m.length;
		if (json) {
			print_json(&m, first);
			first = 0;
			continue;
		}
		/* Human rows show stored data only; join rows that touch. */
		if (!m.data || m.zero)
			continue;
		if (have_pend && pend.file == m.file &&
		    pend.start + pend.length == m.start && pend.has_offset &&
		    m.has_offset && pend.offset + pend.length == m.offset) {
			pend.length += m.length;
			continue;
		}
		if (have_pend)
			print_human(&pend);
		pend = m;
		have_pend = 1;
	}
	if (ret < 0)
		cli_die(EXIT_FAIL, "cannot map '%s': %s", args[0],
			img_errmsg(img));
	if (have_pend)
		print_human(&pend);
	/* An empty disk is one empty extent, as qemu-img prints it. */
	if (json && first)
		print_json(&(struct img_map){ 0 }, 1);
	if (json)
		printf("]\n");
	img_free(img);
	return EXIT_OK;
}
