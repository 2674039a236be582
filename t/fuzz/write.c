/* write.c: the writing paths under fuzzing: img_check -r leaks / -r all and img_compact on an in-memory copy, then their post-conditions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char *const names[] = {
	[FUZZ_REPAIR_LEAKS] = "check -r leaks",
	[FUZZ_REPAIR_ALL] = "check -r all",
	[FUZZ_COMPACT] = "compact",
	[FUZZ_DEMOTE] = "demote",
};

/* FUZZ_KEEP=FILE (for replaying by hand): the bytes the command left are
 * written to FILE, to look at with the commands. */
static void keep_output(const uint8_t *bytes, size_t len)
{
	const char *path = getenv("FUZZ_KEEP");
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "wb");
	if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0)
		fuzz_fail("cannot write FUZZ_KEEP file '%s'", path);
}

int fuzz_write_path(const uint8_t *data, size_t size, enum fuzz_write what)
{
	struct img_open_opts o = { .check = 1, .metadata_only = 1,
				   .no_backing = 1, .writable = 1 };
	struct fuzz_ranges lost = { 0 };
	struct fuzz_shared shared;
	struct fuzz_snap before, after;
	struct img_check res = { 0 }, pre, again;
	struct img_compact_result cr;
	const void *out;
	uint8_t *copy;
	size_t len;
	struct img *img;
	int ret, pre_ret, ret2;

	img = fuzz_open(data, size, &o);
	if (!img)
		return 0;
	fuzz_snap_take(&before, data, size);
	memset(&shared, 0, sizeof(shared));
	shared.cluster_size = before.cluster_size;
	pre_ret = fuzz_check_bytes(data, size, &pre, &shared);
	if (what == FUZZ_COMPACT) {
		struct img_compact_opts co = { .msg = fuzz_collect_msg,
					       .msg_arg = &lost };
		ret = img_compact(img, &co, &cr);
	} else if (what == FUZZ_DEMOTE) {
		struct img_demote_opts dopt = { .msg = fuzz_collect_msg,
						.msg_arg = &lost };
		struct img_demote_result dr;

		ret = img_demote(img, &dopt, &dr);
	} else {
		struct img_check_opts co = {
			.fix = what == FUZZ_REPAIR_ALL ? IMG_CHECK_FIX_ALL
						       : IMG_CHECK_FIX_LEAKS,
			.msg = fuzz_collect_msg, .msg_arg = &lost,
		};
		ret = img_check(img, &co, &res);
	}
	if (img_mem_data(img, &out, &len) < 0)
		fuzz_fail("%s: img_mem_data fails", names[what]);
	copy = malloc(len ? len : 1);
	if (!copy)
		fuzz_fail("out of memory");
	if (len)
		memcpy(copy, out, len);
	img_free(img);
	keep_output(copy, len);

	/* Compaction and demotion lose nothing: only repairs may clear
	 * entries. */
	if (what == FUZZ_COMPACT || what == FUZZ_DEMOTE)
		FUZZ_ASSERT(!lost.n, "%s: says a guest range lost its data",
			    names[what]);
	ret2 = fuzz_check_bytes(copy, len, &again, NULL);
	/* A repair never makes an image corrupt that was not. */
	if (pre_ret == 0 && !pre.corruptions && !pre.check_errors)
		FUZZ_ASSERT(ret2 == 0 && !again.corruptions &&
			    !again.check_errors,
			    "%s: a fresh check finds %llu errors, %llu check errors (%d) where there were none",
			    names[what], (unsigned long long)again.corruptions,
			    (unsigned long long)again.check_errors, ret2);
	/* A demotion that wrote anything leaves a clean image; one that
	 * wrote nothing (an image already in its oldest form, or without
	 * features) leaves it as it was. */
	if ((what == FUZZ_COMPACT ||
	     (what == FUZZ_DEMOTE && (len != size || memcmp(copy, data, size)))) &&
	    ret == 0)
		FUZZ_ASSERT(ret2 == 0 && !again.check_errors &&
			    !again.corruptions && !again.leaks,
			    "%s: succeeded, but a fresh check finds %llu errors, %llu leaks, %llu check errors (%d)",
			    names[what],
			    (unsigned long long)again.corruptions,
			    (unsigned long long)again.leaks,
			    (unsigned long long)again.check_errors, ret2);
	/* A repair that ran through leaves no more than the errors and
	 * leaks its counts say remain (those count what was not fixed: a
	 * leak between used clusters may stay, punched). */
	if (what != FUZZ_COMPACT && what != FUZZ_DEMOTE && ret == 0 &&
	    !res.check_errors)
		FUZZ_ASSERT(ret2 == 0 && !again.check_errors &&
			    again.leaks <= res.leaks &&
			    (res.corruptions || !again.corruptions),
			    "%s: says %llu errors and %llu leaks remain, but a fresh check finds %llu errors, %llu leaks, %llu check errors (%d)",
			    names[what], (unsigned long long)res.corruptions,
			    (unsigned long long)res.leaks,
			    (unsigned long long)again.corruptions,
			    (unsigned long long)again.leaks,
			    (unsigned long long)again.check_errors, ret2);
	fuzz_snap_take(&after, copy, len);
	fuzz_snap_same(&before, &after, &lost, &shared, names[what]);
	fuzz_snap_free(&before);
	fuzz_snap_free(&after);
	fuzz_ranges_free(&lost);
	fuzz_ranges_free(&shared.host);
	fuzz_ranges_free(&shared.guest);
	free(copy);
	return 0;
}
