/* img-map: print the guest address space of an image as extents, like `qemu-img map`. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *output;
static const char *start_arg, *length_arg;

static struct poptOption options[] = {
	{ "output", 0, POPT_ARG_STRING, &output, 0,
	  "output format: human (default) or json", "human|json" },
	{ "start-offset", 's', POPT_ARG_STRING, &start_arg, 0,
	  "map from this guest offset (default 0)", "OFFSET" },
	{ "max-length", 'l', POPT_ARG_STRING, &length_arg, 0,
	  "map at most this many bytes (default: to the end)", "LEN" },
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

/*
 * An offset or length as qemu-img map takes it: a size with an optional
 * suffix (1M, 1.5G, 512) or a hexadecimal number (0x100000, as the human
 * output prints offsets), at most 2^63 - 1. Dies with a usage error.
 */
static uint64_t parse_range_arg(const char *what, const char *s)
{
	uint64_t v;
	char *end;
	int bad;

	if (!strncasecmp(s, "0x", 2)) {
		errno = 0;
		v = strtoull(s + 2, &end, 16);
		bad = errno || *end || !isxdigit((unsigned char)s[2]);
	} else {
		bad = cli_parse_size(s, &v) < 0;
	}
	if (bad || v > INT64_MAX)
		cli_die(EXIT_USAGE, "invalid %s '%s': a size below 8E such as 1M, 1.5G, 4096 or 0x1000",
			what, s);
	return v;
}

int main(int argc, const char **argv)
{
	const char **args;
	struct img *img;
	struct img_map m, pend;
	uint64_t start = 0, off, end = UINT64_MAX;
	int json, nargs, ret = 0, first = 1, have_pend = 0;

	cli_init(argv[0]);
	args = cli_parse(argc, argv, options, "[OPTION...] IMAGE", 1, 1, &nargs);
	json = cli_output_json(output);
	if (start_arg)
		start = parse_range_arg("start offset", start_arg);
	/* No overflow: both are below 2^63. */
	if (length_arg)
		end = start + parse_range_arg("max length", length_arg);
	img = cli_open(args[0], 0);
	if (end > img_size(img))
		end = img_size(img);
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	/* The range may be empty: a start at or past the end, or -l 0. */
	off = start;
	while (off < end && (ret = img_map_next(img, off, end - off, &m)) > 0) {
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
	/* An empty range (or disk) is one empty extent at its start, as
	 * qemu-img prints it. */
	if (json && first)
		print_json(&(struct img_map){ .start = start }, 1);
	if (json)
		printf("]\n");
	img_free(img);
	return EXIT_OK;
}
