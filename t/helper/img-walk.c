/* img-walk: test helper: walk an image's L1/L2 tables with lib/walk.c and print every L2 table and entry. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "imgint.h"
#include "walk.h"

static int on_table(struct img *img, uint64_t i, uint64_t off, void *arg)
{
	printf("table %" PRIu64 " 0x%" PRIx64 "\n", i, off);
	return 0;
}

static int on_bad(struct img *img, uint64_t i, uint64_t entry,
		  enum img_walk_problem why, void *arg)
{
	printf("bad-table %" PRIu64 " 0x%" PRIx64 " %s\n", i, entry,
	       img_walk_problem_str(why));
	return 0;
}

/* One line per entry that is not unallocated. */
static int on_entry(struct img *img, struct img_walk_entry *e, void *arg)
{
	static const char *kind[] = { "unalloc", "zero", "data" };

	if (e->ext.kind == IMG_EXT_UNALLOC && !e->problem)
		return 0;
	printf("%" PRIu64 " %s 0x%" PRIx64, e->guest, kind[e->ext.kind],
	       e->ext.host);
	if (e->ext.flags & IMG_EXT_F_COMPRESSED)
		printf(" compressed %" PRIu64, e->ext.clen);
	if (e->problem)
		printf(" problem: %s", e->problem);
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct img_open_opts o = { .no_backing = 1, .metadata_only = 1 };
	struct img_walk_cb cb = { on_table, on_bad, on_entry };
	struct img_walk_layout lay;
	struct img *img;

	if (argc == 4 && !strcmp(argv[1], "-f")) {
		o.format = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: img-walk [-f FMT] IMAGE\n");
		return 2;
	}
	img = img_new();
	if (!img || img_open(img, argv[1], &o) < 0) {
		fprintf(stderr, "img-walk: cannot open '%s': %s\n", argv[1],
			img ? img_errmsg(img) : "out of memory");
		img_free(img);
		return 1;
	}
	if (!img->drv->walk_layout) {
		fprintf(stderr, "img-walk: '%s': format has no tables\n", argv[1]);
		img_free(img);
		return 1;
	}
	img->drv->walk_layout(img, &lay);
	if (img_walk(img, &lay, &cb, NULL) < 0) {
		fprintf(stderr, "img-walk: cannot walk '%s': %s\n", argv[1],
			img_errmsg(img));
		img_free(img);
		return 1;
	}
	img_free(img);
	return 0;
}
