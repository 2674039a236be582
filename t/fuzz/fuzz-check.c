/* fuzz-check.c: fuzz target: open for checking, img_check without repairs, then a dry-run img_compact; both only read. */
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_open_opts o = { .check = 1, .metadata_only = 1,
				   .no_backing = 1 };
	struct img_compact_opts co = { .dry_run = 1 };
	struct img_check_opts ko = { .fix = IMG_CHECK_NO_FIX };
	struct fuzz_ranges msgs = { 0 };
	struct img_compact_result cr;
	struct img_check res;
	const void *out;
	size_t len;
	struct img *img;

	img = fuzz_open(data, size, &o);
	if (!img)
		return 0;
	ko.msg = fuzz_collect_msg;
	ko.msg_arg = &msgs;
	img_check(img, &ko, &res);
	FUZZ_ASSERT(!msgs.n, "check: a check without repairs says data was lost");
	img_free(img);

	img = fuzz_open(data, size, &o);
	if (!img)
		fuzz_fail("check: the image opened once, not twice");
	img_compact(img, &co, &cr);
	FUZZ_ASSERT(img_mem_data(img, &out, &len) == 0 && len == size &&
		    (!size || !memcmp(out, data, size)),
		    "compact --dry-run: the image changed");
	img_free(img);
	fuzz_ranges_free(&msgs);
	return 0;
}
