/* fuzz-stream.c: fuzz target: the input read as a stream (decompressed, archive members walked): blocks in order, peek equal to the first bytes read, output bounded. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "stream.h"

/* Decompressed bytes looked at per input: a small input may inflate to
 * gigabytes, which prove nothing more. */
#define MAX_OUT (32u << 20)

/* The input in a memory file, as a compressed file or archive on disk. */
static int input_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-stream", MFD_CLOEXEC);

	if (fd < 0)
		fuzz_fail("memfd_create failed");
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			fuzz_fail("cannot write the memory file");
		done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		fuzz_fail("cannot rewind the memory file");
	return fd;
}

/* Every member's blocks: each starts at or after the end of the one
 * before; the size covers them all. */
static void walk_blocks(struct img_stream *s)
{
	uint64_t out = 0;

	do {
		const uint8_t *buf;
		size_t len;
		uint64_t off, end = 0;
		int r;

		while ((r = img_stream_next(s, &buf, &len, &off)) == 1) {
			FUZZ_ASSERT(off >= end, "block at 0x%llx before 0x%llx",
				    (unsigned long long)off,
				    (unsigned long long)end);
			end = off + len;
			out += len;
			if (out > MAX_OUT)
				return;
		}
		if (r < 0)
			return;
		FUZZ_ASSERT(img_stream_size(s) >= end,
			    "size 0x%llx below the data's end 0x%llx",
			    (unsigned long long)img_stream_size(s),
			    (unsigned long long)end);
	} while (img_stream_must_choose(s) && img_stream_next_member(s) == 1);
}

/* peek, then the cursor from 0: the same first bytes, then the rest. */
static void peek_then_read(struct img_stream *s)
{
	static uint8_t head[4096], again[sizeof(head)], buf[1 << 16];
	struct img_stream_cursor c = { .s = s };
	long n = img_stream_peek(s, head, sizeof(head));
	uint64_t off;
	size_t got;

	if (n < 0)
		return;
	if (img_stream_read(&c, 0, again, sizeof(again), &got) < 0)
		return;
	FUZZ_ASSERT(got == (size_t)n && !memcmp(head, again, got),
		    "peek gave %ld bytes, reading %zu, or other bytes", n, got);
	for (off = got; got == sizeof(again) && off < MAX_OUT; off += got)
		if (img_stream_read(&c, off, buf, sizeof(buf), &got) < 0 ||
		    got < sizeof(buf))
			break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const members[] = { NULL, "disk.img" };
	char err[1024];

	for (int pass = 0; pass < 2; pass++) {
		struct img_stream *s;
		int fd = input_fd(data, size);

		if (img_stream_open(fd, members[pass], &s, err, sizeof(err)) == 0) {
			if (pass == 0)
				walk_blocks(s);
			else
				peek_then_read(s);
			img_stream_close(s);
		} else {
			FUZZ_ASSERT(*err, "an open failed without a reason");
		}
		close(fd);
	}
	return 0;
}
