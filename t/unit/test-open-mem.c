/* test-open-mem.c: unit tests of img_open_mem and img_mem_data: a private copy, writable, and no other file ever opened. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endian.h"
#include "img.h"
#include "qcow.h"
#include "unit.h"

/*
 * qcow (v1), 512-byte clusters, one 64-entry L2 table: a 32 KiB disk.
 * The L1 table takes 512 bytes from 48 (qemu-img rounds it so), the L2
 * table is cluster 2, cluster 3 (guest 0) holds 0xaa, cluster 4 (guest
 * 512) zeros; the rest is unallocated, so it reads from the backing file
 * when there is one.
 */
#define CS 512u
#define IMG_LEN (5 * CS)

static void build(uint8_t *f, const char *backing)
{
	size_t blen = backing ? strlen(backing) : 0;

	memset(f, 0, IMG_LEN);
	put_be32(f, IMG_QCOW_MAGIC);
	put_be32(f + 4, IMG_QCOW_VERSION);
	if (blen) {
		put_be64(f + 8, 56);              /* backing name after L1 */
		put_be32(f + 16, (uint32_t)blen);
		memcpy(f + 56, backing, blen);
	}
	put_be64(f + 24, 64 * CS);            /* size */
	f[32] = 9;                            /* cluster bits */
	f[33] = 6;                            /* L2 bits */
	put_be64(f + 40, 48);                 /* L1 table */
	put_be64(f + 48, 2 * CS);             /* L1[0] */
	put_be64(f + 2 * CS, 3 * CS);         /* guest 0 */
	put_be64(f + 2 * CS + 8, 4 * CS);     /* guest 512: stored zeros */
	memset(f + 3 * CS, 0xaa, CS);
}

static int all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* A raw file of 0x55 bytes, as big as the disk: what a backing file
 * that was opened would show. */
static char *temp_backing(void)
{
	static uint8_t b[64 * CS];
	char *path = strdup("/tmp/imgtools-mem-XXXXXX");
	int fd = path ? mkstemp(path) : -1;

	if (fd < 0) {
		free(path);
		return NULL;
	}
	memset(b, 0x55, sizeof(b));
	if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

static struct img *open_mem(const uint8_t *f, size_t len,
			    const struct img_open_opts *o)
{
	struct img *img = img_new();

	if (img && img_open_mem(img, "mem.qcow", f, len, o) < 0) {
		tap_diag("img_open_mem: %s", img_errmsg(img));
		img_free(img);
		return NULL;
	}
	return img;
}

static void compact_from_memory(uint8_t *f)
{
	struct img_open_opts co = { .check = 1, .metadata_only = 1,
				    .no_backing = 1, .writable = 1 };
	struct img_compact_opts copts = { 0 };
	struct img_compact_result r;
	struct img *img, *again = NULL;
	const void *data;
	uint8_t buf[2 * CS];
	size_t len;
	int ret;

	/* Over a backing file, a zero cluster of qcow may be dropped only
	 * where the backing file reads zeros: that needs the file. */
	img = open_mem(f, IMG_LEN, &co);
	ret = img ? img_compact(img, &copts, &r) : -1;
	tap_ok(ret == IMG_E_UNSUPPORTED &&
	       strstr(img_errmsg(img), "in memory"),
	       "img_open_mem: compaction that needs the backing file fails clearly (%s)",
	       img ? img_errmsg(img) : "");
	img_free(img);

	build(f, NULL);
	img = open_mem(f, IMG_LEN, &co);
	ret = img ? img_compact(img, &copts, &r) : -1;
	tap_ok(ret == 0 && r.clusters_freed == 1,
	       "img_open_mem: writable: compaction runs on the copy");
	ret = img ? img_mem_data(img, &data, &len) : -1;
	tap_ok(ret == 0 && len == 4 * CS && all_bytes(f + 3 * CS, CS, 0xaa),
	       "img_mem_data: the compacted bytes, the caller's untouched (%zu)",
	       len);
	if (ret == 0)
		again = open_mem(data, len, NULL);
	ret = again ? img_read(again, 0, buf, sizeof(buf)) : -1;
	tap_ok(ret == 0 && all_bytes(buf, CS, 0xaa) &&
	       all_bytes(buf + CS, CS, 0),
	       "img_open_mem: the result reopens and reads the same");
	img_free(again);
	img_free(img);
}

void test_open_mem(void)
{
	static uint8_t f[IMG_LEN], buf[CS];
	struct img_open_opts o = { 0 };
	struct img_info info;
	char *backing = temp_backing();
	struct img *img;
	const void *data;
	size_t len;

	if (!tap_ok(backing != NULL, "img_open_mem: a backing file made"))
		return;
	build(f, backing);
	img = open_mem(f, IMG_LEN, &o);
	if (!tap_ok(img != NULL, "img_open_mem: an image naming a backing file opens")) {
		unlink(backing);
		free(backing);
		return;
	}
	memset(f, 0, IMG_LEN);   /* the library has its own copy */
	img_get_info(img, &info);
	tap_ok(!strcmp(img_format(img), "qcow") &&
	       !strcmp(img_path(img), "mem.qcow") && img_size(img) == 64 * CS &&
	       info.file_size == IMG_LEN && info.backing_file &&
	       !strcmp(info.backing_file, backing) && !info.backing_path,
	       "img_open_mem: format, name, sizes, the backing name as stored");
	tap_ok(img_read(img, 0, buf, CS) == 0 && all_bytes(buf, CS, 0xaa),
	       "img_open_mem: data read from the copy");
	tap_ok(!img_backing(img) &&
	       img_read(img, 4 * CS, buf, CS) == 0 && all_bytes(buf, CS, 0),
	       "img_open_mem: the backing file is not opened: unallocated reads zeros");
	tap_ok(img_mem_data(img, &data, &len) == 0 && len == IMG_LEN &&
	       ((const uint8_t *)data)[3 * CS] == 0xaa,
	       "img_mem_data: the image's bytes");
	img_free(img);

	img = img_new();
	tap_ok(img && img_open(img, backing, NULL) == 0 &&
	       img_mem_data(img, &data, &len) == -EINVAL,
	       "img_mem_data: refused for an image from a file");
	img_free(img);

	build(f, backing);
	compact_from_memory(f);
	unlink(backing);
	free(backing);
}
