/* test-io.c: unit tests of the I/O layer (lib/io.h): memory and file backends, exact and zero-filled reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "unit.h"

#define MEM_LEN 1000

static void fill_pattern(uint8_t *p, size_t len, uint64_t base)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((base + i) * 7 + 3);
}

static int is_pattern(const uint8_t *p, size_t len, uint64_t base)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)((base + i) * 7 + 3))
			return 0;
	return 1;
}

static int all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* read_exact and read_zfill against a backend holding MEM_LEN pattern bytes. */
static void check_reads(struct img_io *io, const char *name)
{
	uint8_t buf[300];
	uint64_t size = 0;

	tap_ok(img_io_size(io, &size) == 0 && size == MEM_LEN,
	       "io %s: size is %d", name, MEM_LEN);

	memset(buf, 0xcc, sizeof(buf));
	tap_ok(img_io_read_exact(io, buf, 200, 100) == 0 &&
	       is_pattern(buf, 200, 100) && buf[200] == 0xcc,
	       "io %s: read_exact inside the file", name);
	tap_ok(img_io_read_exact(io, buf, 300, MEM_LEN - 300) == 0 &&
	       is_pattern(buf, 300, MEM_LEN - 300),
	       "io %s: read_exact ending exactly at EOF", name);
	tap_ok(img_io_read_exact(io, buf, 300, MEM_LEN - 299) == -ENODATA,
	       "io %s: read_exact one byte past EOF gives -ENODATA", name);
	tap_ok(img_io_read_exact(io, buf, 1, MEM_LEN) == -ENODATA &&
	       img_io_read_exact(io, buf, 8, UINT64_C(1) << 40) == -ENODATA,
	       "io %s: read_exact starting at or far past EOF gives -ENODATA", name);
	tap_ok(img_io_read_exact(io, buf, 0, MEM_LEN) == 0,
	       "io %s: empty read_exact at EOF succeeds", name);

	memset(buf, 0xcc, sizeof(buf));
	tap_ok(img_io_read_zfill(io, buf, 300, MEM_LEN - 100) == 0 &&
	       is_pattern(buf, 100, MEM_LEN - 100) && all_bytes(buf + 100, 200, 0),
	       "io %s: read_zfill across EOF zero-fills the tail", name);
	memset(buf, 0xcc, sizeof(buf));
	tap_ok(img_io_read_zfill(io, buf, 300, MEM_LEN + 5000) == 0 &&
	       all_bytes(buf, 300, 0),
	       "io %s: read_zfill wholly past EOF reads zeros", name);
	memset(buf, 0xcc, sizeof(buf));
	tap_ok(img_io_read_zfill(io, buf, 50, 10) == 0 && is_pattern(buf, 50, 10) &&
	       buf[50] == 0xcc,
	       "io %s: read_zfill inside the file reads data only", name);
}

static void test_mem(void)
{
	uint8_t data[MEM_LEN], buf[16];
	struct img_io *io = NULL;
	uint64_t size = 0;

	fill_pattern(data, sizeof(data), 0);
	if (!tap_ok(img_io_open_mem(&io, data, sizeof(data)) == 0 && io,
		    "io mem: open"))
		return;
	check_reads(io, "mem");

	memset(buf, 0x5a, sizeof(buf));
	tap_ok(img_io_pwrite(io, buf, sizeof(buf), 5000) == 0 &&
	       img_io_size(io, &size) == 0 && size == 5016,
	       "io mem: a write past EOF extends the backend");
	{
		uint8_t *all = malloc(5016);
		tap_ok(img_io_read_exact(io, all, 5016, 0) == 0 &&
		       is_pattern(all, MEM_LEN, 0) &&
		       all_bytes(all + MEM_LEN, 5000 - MEM_LEN, 0) &&
		       all_bytes(all + 5000, 16, 0x5a),
		       "io mem: the gap before a write past EOF reads as zeros");
		free(all);
	}
	tap_ok(img_io_truncate(io, 10) == 0 && img_io_truncate(io, 100) == 0 &&
	       img_io_read_exact(io, buf, 16, 84) == 0 && all_bytes(buf, 16, 0),
	       "io mem: shrink then grow reads zeros, not stale bytes");
	img_io_close(io);

	io = NULL;
	tap_ok(img_io_open_mem(&io, NULL, 0) == 0 && io &&
	       img_io_size(io, &size) == 0 && size == 0 &&
	       img_io_read_exact(io, buf, 1, 0) == -ENODATA,
	       "io mem: an empty backend");
	img_io_close(io);
}

/* The memory backend is sparse as a file is: 4 KiB blocks of zeros are
 * holes when opened, punching makes holes, writes make data. */
static void test_mem_holes(void)
{
	uint8_t *data = calloc(1, 5 * 4096), buf[8];
	struct img_io *io = NULL;
	uint64_t start = 0, end = 0;

	if (!data)
		return;
	data[4096] = 1;                 /* block 1: data */
	data[3 * 4096 + 100] = 2;       /* block 3: data */
	if (!tap_ok(img_io_open_mem(&io, data, 5 * 4096) == 0,
		    "io mem holes: open"))
		goto out;
	tap_ok(img_io_next_data(io, 0, &start, &end) == 0 &&
	       start == 4096 && end == 2 * 4096,
	       "io mem holes: zero blocks are holes when opened");
	tap_ok(img_io_next_data(io, 2 * 4096, &start, &end) == 0 &&
	       start == 3 * 4096 && end == 4 * 4096 &&
	       img_io_next_data(io, 4 * 4096, &start, &end) == -ENXIO,
	       "io mem holes: SEEK_DATA and SEEK_HOLE up to the end");
	tap_ok(img_io_punch(io, 4096 - 10, 4096 + 20) == 0 &&
	       img_io_next_data(io, 0, &start, &end) == 0 &&
	       start == 3 * 4096 &&
	       img_io_read_exact(io, buf, 8, 4096) == 0 && all_bytes(buf, 8, 0),
	       "io mem holes: a punched block is a hole and reads zeros");
	tap_ok(img_io_pwrite(io, "x", 1, 100) == 0 &&
	       img_io_next_data(io, 0, &start, &end) == 0 &&
	       start == 0 && end == 4096,
	       "io mem holes: a write makes its block data");
	tap_ok(img_io_truncate(io, 2 * 4096) == 0 &&
	       img_io_truncate(io, 6 * 4096) == 0 &&
	       img_io_next_data(io, 4096, &start, &end) == -ENXIO,
	       "io mem holes: a file cut and grown again is a hole there");
	img_io_close(io);
out:
	free(data);
}

static void test_file(void)
{
	char path[] = "img-unit-io.XXXXXX";   /* in the cwd: the trash directory */
	uint8_t data[MEM_LEN], buf[16];
	struct img_io *io = NULL;
	uint64_t start = 0, end = 0;
	int fd = mkstemp(path);

	fill_pattern(data, sizeof(data), 0);
	if (!tap_ok(fd >= 0 && write(fd, data, sizeof(data)) == MEM_LEN,
		    "io file: make a test file"))
		return;
	close(fd);

	if (tap_ok(img_io_open_file(&io, path, IMG_IO_RDONLY) == 0 && io,
		   "io file: open read-only")) {
		check_reads(io, "file");
		tap_ok(img_io_pwrite(io, buf, 1, 0) < 0,
		       "io file: writing a read-only file fails");
		img_io_close(io);
	}

	/* A sparse file: 1 MiB with 4 KiB of data at 512 KiB. */
	fd = open(path, O_RDWR | O_TRUNC);
	memset(buf, 1, sizeof(buf));
	if (!tap_ok(fd >= 0 && ftruncate(fd, 1 << 20) == 0 &&
		    pwrite(fd, buf, sizeof(buf), 512 << 10) == sizeof(buf),
		    "io file: make a sparse file")) {
		unlink(path);
		return;
	}
	close(fd);
	io = NULL;
	if (tap_ok(img_io_open_file(&io, path, IMG_IO_RDONLY) == 0 && io,
		   "io file: open the sparse file")) {
		int ret = img_io_next_data(io, 0, &start, &end);
		tap_ok(ret == 0 && start <= (512 << 10) &&
		       end >= (512 << 10) + sizeof(buf) && end <= (1 << 20),
		       "io file: next_data finds the data (got %d [%llu, %llu))",
		       ret, (unsigned long long)start, (unsigned long long)end);
		tap_ok(img_io_next_data(io, 1 << 20, &start, &end) == -ENXIO &&
		       img_io_next_data(io, UINT64_C(1) << 50, &start, &end) == -ENXIO,
		       "io file: next_data at or past EOF gives -ENXIO");
		img_io_close(io);
	}
	unlink(path);

	io = NULL;
	tap_ok(img_io_open_file(&io, path, IMG_IO_RDONLY) == -ENOENT,
	       "io file: opening a missing file gives -ENOENT");
}

/* A backend whose every operation fails, to see errors pass through. */
static ssize_t broken_pread(struct img_io *io, void *buf, size_t len,
			    uint64_t off)
{
	return -EIO;
}

static int broken_size(struct img_io *io, uint64_t *size)
{
	return -EIO;
}

static void broken_close(struct img_io *io)
{
}

static void test_errors(void)
{
	static const struct img_io_ops broken_ops = {
		.pread = broken_pread,
		.size = broken_size,
		.close = broken_close,
	};
	struct img_io io = { .ops = &broken_ops, .fd = -1 };
	uint8_t buf[8];
	uint64_t size;

	tap_ok(img_io_read_exact(&io, buf, sizeof(buf), 0) == -EIO &&
	       img_io_read_zfill(&io, buf, sizeof(buf), 0) == -EIO &&
	       img_io_size(&io, &size) == -EIO,
	       "io: backend errors pass through read_exact, read_zfill, size");
}

static void test_fault_wrapper(void)
{
	struct img_io *io = NULL, *wrapped;
	uint8_t buf[4] = { 1, 2, 3, 4 };

	unsetenv("IMG_FAULT_WRITE");
	img_io_open_mem(&io, NULL, 0);
	tap_ok(img_io_fault_wrap(io) == io,
	       "io fault: no wrapper without IMG_FAULT_WRITE");
	setenv("IMG_FAULT_WRITE", "2", 1);
	wrapped = img_io_fault_wrap(io);
	unsetenv("IMG_FAULT_WRITE");
	tap_ok(wrapped && wrapped != io &&
	       img_io_pwrite(wrapped, buf, 4, 0) == 0 &&
	       img_io_pwrite(wrapped, buf, 4, 4) == -EIO &&
	       img_io_pwrite(wrapped, buf, 4, 8) == -EIO,
	       "io fault: IMG_FAULT_WRITE=2 fails the second write and later ones");
	{
		uint64_t size = 0;
		tap_ok(img_io_size(wrapped, &size) == 0 && size == 4 &&
		       img_io_read_exact(wrapped, buf, 4, 0) == 0 && buf[3] == 4,
		       "io fault: failed writes never reach the backend; reads pass");
	}
	img_io_close(wrapped ? wrapped : io);
}

void test_io(void)
{
	test_mem();
	test_mem_holes();
	test_file();
	test_errors();
	test_fault_wrapper();
}
