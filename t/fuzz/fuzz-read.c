/* fuzz-read.c: fuzz target: open, info, img_map_next over the whole disk, img_read of it; where the map says zeros, reads give zeros. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Every string and count img-info would print. */
static size_t touch_info(const struct img *img)
{
	struct img_info in;
	size_t n = 0;

	img_get_info(img, &in);
	n += in.format ? strlen(in.format) : 0;
	n += in.backing_file ? strlen(in.backing_file) : 0;
	n += in.backing_format ? strlen(in.backing_format) : 0;
	for (int i = 0; i < in.nprops; i++)
		n += strlen(in.props[i].key) +
		     (in.props[i].type == IMG_PROP_STR && in.props[i].str ?
		      strlen(in.props[i].str) : 0);
	for (int i = 0; i < in.nsnapshots; i++)
		n += strlen(in.snapshots[i].id) + strlen(in.snapshots[i].name);
	for (int i = 0; i < in.nbitmaps; i++)
		n += strlen(in.bitmaps[i].name);
	return n;
}

/* The map over everything: extents in order, within the disk. Ranges it
 * calls zero within the first FUZZ_MAX_GUEST bytes are marked in zero. */
static void map_all(struct img *img, uint8_t *zero, uint64_t len)
{
	uint64_t size = img_size(img), off = 0;
	struct img_map m;

	for (int steps = 0; off < size && steps < FUZZ_MAX_MAP_STEPS;
	     steps++) {
		int ret = img_map_next(img, off, size - off, &m);
		if (ret <= 0)
			return;
		FUZZ_ASSERT(m.start == off && m.length &&
			    m.length <= size - off,
			    "map: extent 0x%llx+0x%llx asked at 0x%llx",
			    (unsigned long long)m.start,
			    (unsigned long long)m.length,
			    (unsigned long long)off);
		if (m.zero && off < len)
			memset(zero + off, 1,
			       (size_t)(m.length < len - off ? m.length
							     : len - off));
		off += m.length;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img *img = fuzz_open(data, size, NULL);
	uint64_t len, block = 64 * 1024;
	uint8_t *buf, *zero;

	if (!img)
		return 0;
	touch_info(img);
	len = img_size(img) < FUZZ_MAX_GUEST ? img_size(img) : FUZZ_MAX_GUEST;
	buf = malloc(block);
	zero = calloc(len ? len : 1, 1);
	if (!buf || !zero)
		fuzz_fail("out of memory");
	map_all(img, zero, len);
	for (uint64_t off = 0; off < len; off += block) {
		size_t n = (size_t)(len - off < block ? len - off : block);
		if (img_read(img, off, buf, n) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(!zero[off + i] || !buf[i],
				    "read: guest 0x%llx is mapped as zeros but reads 0x%02x",
				    (unsigned long long)(off + i), buf[i]);
	}
	free(zero);
	free(buf);
	img_free(img);
	return 0;
}
