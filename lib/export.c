/* export.c: writing the whole virtual disk as raw bytes, sparse where the output allows. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "imgint.h"
#include "pipeline.h"

#define CHUNK (2u << 20)
#define NSLOTS 4

/*
 * Where the bytes go. A regular file is written through the I/O layer (and
 * so through fault injection in tests) and left with holes where the guest
 * reads zeros; anything else (a pipe) gets every byte in order.
 */
struct sink {
	int fd;
	struct img_io *io;   /* set for a regular file */
	int allocate;        /* write zeros instead of leaving holes */
	int overwrite;       /* an existing target: zero runs must be made zero */
	uint64_t pos;        /* bytes accounted for so far */
	uint8_t *zeros;      /* CHUNK zero bytes, where zeros are written */
};

static int sink_data(struct sink *s, const uint8_t *buf, size_t n)
{
	if (s->io) {
		int ret = img_io_pwrite(s->io, buf, n, s->pos);
		if (ret < 0)
			return ret;
	} else {
		for (size_t done = 0; done < n;) {
			ssize_t w = write(s->fd, buf + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			done += (size_t)w;
			img_io_count_written((uint64_t)w);
		}
	}
	s->pos += n;
	return 0;
}

static int sink_zero(struct sink *s, uint64_t n)
{
	if (s->io && !s->allocate && !s->overwrite) {
		s->pos += n;    /* a hole: the file was given its size first */
		return 0;
	}
	if (s->io && !s->allocate && img_io_punch(s->io, s->pos, n) == 0) {
		s->pos += n;    /* punched: reads as zeros now */
		return 0;
	}
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		int ret = sink_data(s, s->zeros, k);
		if (ret < 0)
			return ret;
		n -= k;
	}
	return 0;
}

/* Write buf, leaving zero runs of at least gran bytes as holes. */
static int sink_scan(struct sink *s, const uint8_t *buf, size_t n, size_t gran)
{
	size_t i = 0;

	if (!gran || !s->io)
		return sink_data(s, buf, n);
	while (i < n) {
		size_t z = img_zero_prefix(buf + i, n - i, gran);
		size_t d = 0;
		int ret;

		if (z) {
			ret = sink_zero(s, z);
			if (ret < 0)
				return ret;
			i += z;
			continue;
		}
		/* Extend the data run up to the next zero block. */
		while (i + d < n) {
			size_t k = n - i - d < gran ? n - i - d : gran;
			if (d && img_is_zero(buf + i + d, k))
				break;
			d += k;
		}
		ret = sink_data(s, buf + i, d);
		if (ret < 0)
			return ret;
		i += d;
	}
	return 0;
}

/*
 * A slot carries a run of guest bytes as a list of pieces: stored data
 * (its bytes follow each other in the slot's buffer), zero runs (no
 * bytes), and stored data to copy file to file (not read: where it lies).
 * Batching many small pieces per slot keeps the hand-over between the
 * threads rare even when data and holes alternate every cluster.
 */
#define MAX_PIECES 512

enum piece_kind { P_DATA, P_ZERO, P_COPY };

struct piece {
	uint64_t len;
	enum piece_kind kind;
	struct img_io *from;    /* P_COPY: the file holding the bytes */
	uint64_t host;          /* ...and where */
};

struct pieces {
	int n;
	struct piece p[MAX_PIECES];
};

struct export {
	struct sink sink;
	size_t gran;
	int copy_ok;            /* stored data may go file to file */
	struct img_copier copier;
	uint8_t *scratch;       /* CHUNK bytes, for what the kernel cannot copy */
};

/* A copy piece is probed for zeros in units of this many bytes, each by
 * its first 4 KiB: a unit whose first 4 KiB hold data is copied whole. */
#define COPY_UNIT (64u << 10)

/* Read and write [host, host+n) of from here: as zeros where it is. */
static int copy_by_hand(struct export *x, struct img_io *from, uint64_t host,
			uint64_t n)
{
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		int ret = img_io_read_exact(from, x->scratch, k, host);

		if (ret == 0)
			ret = sink_scan(&x->sink, x->scratch, k, x->gran);
		if (ret < 0)
			return ret;
		host += k;
		n -= k;
	}
	return 0;
}

/* Copy n bytes from host in the kernel to the sink's position. */
static int copy_run(struct export *x, struct img_io *from, uint64_t host,
		    uint64_t n)
{
	int ret;

	if (!n)
		return 0;
	ret = img_io_copy(&x->copier, x->sink.io, x->sink.pos, from, host, n);
	if (ret == 1)
		return copy_by_hand(x, from, host, n);
	if (ret == 0)
		x->sink.pos += n;
	return ret;
}

/* A copy piece: units whose first 4 KiB are data are copied in runs;
 * the others are read, and their zeros become holes. */
static int sink_copy(struct export *x, const struct piece *pc)
{
	uint64_t done = 0, run = 0;

	while (done < pc->len) {
		uint64_t pos = x->sink.pos + run;
		uint64_t n = img_min_u64(COPY_UNIT - pos % COPY_UNIT,
					 pc->len - done);
		size_t head = (size_t)img_min_u64(n, 4096);
		int ret;

		if (!x->gran) {
			run += n;
			done += n;
			continue;
		}
		ret = img_io_read_exact(pc->from, x->scratch, head,
					pc->host + done);
		if (ret < 0)
			return ret;
		if (!img_is_zero(x->scratch, head)) {
			run += n;
			done += n;
			continue;
		}
		ret = copy_run(x, pc->from, pc->host + done - run, run);
		if (ret == 0)
			ret = copy_by_hand(x, pc->from, pc->host + done, n);
		if (ret < 0)
			return ret;
		run = 0;
		done += n;
	}
	return copy_run(x, pc->from, pc->host + done - run, run);
}

/* Consumer thread: write one slot's pieces, in order. */
static int write_slot(struct img_pipe_slot *slot, void *arg)
{
	struct export *x = arg;
	struct pieces *ps = slot->aux;
	const uint8_t *data = slot->buf;

	for (int i = 0; i < ps->n; i++) {
		const struct piece *pc = &ps->p[i];
		int ret;

		if (pc->kind == P_ZERO) {
			ret = sink_zero(&x->sink, pc->len);
		} else if (pc->kind == P_COPY) {
			ret = sink_copy(x, pc);
		} else {
			ret = sink_scan(&x->sink, data, (size_t)pc->len, x->gran);
			data += pc->len;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void add_piece(struct pieces *ps, uint64_t len, enum piece_kind kind,
		      struct img_io *from, uint64_t host)
{
	struct piece *last = ps->n ? &ps->p[ps->n - 1] : NULL;

	if (last && last->kind == kind && kind != P_COPY)
		last->len += len;
	else if (last && kind == P_COPY && last->kind == P_COPY &&
		 last->from == from && last->host + last->len == host)
		last->len += len;
	else
		ps->p[ps->n++] = (struct piece){ len, kind, from, host };
}

/* Fill slot with the guest bytes from off on, until its buffer or piece
 * list is full or the disk ends. Data to copy counts against the buffer
 * too, which bounds the work in one slot. */
static int fill_slot(struct img *img, struct img_salvage *salvage,
		     const struct export *x, uint64_t off,
		     struct img_pipe_slot *slot)
{
	struct pieces *ps = slot->aux;
	uint64_t used = 0, filled = 0;

	slot->off = off;
	slot->len = 0;
	ps->n = 0;
	while (off < img->size && used < CHUNK && ps->n < MAX_PIECES) {
		struct img_extent e;
		struct img *l;
		int depth, ret;

		/* Zero runs take no buffer space: ask for all that is left. */
		ret = img_salvage_status(salvage, img, off, img->size - off,
					 &e, &l, &depth);
		if (ret < 0)
			return ret;
		if (e.kind == IMG_EXT_DATA) {
			if (e.length > CHUNK - used)
				e.length = CHUNK - used;
			used += e.length;
		}
		if (e.kind == IMG_EXT_DATA && x->copy_ok &&
		    img_extent_copyable(l, &e)) {
			add_piece(ps, e.length, P_COPY, l->data_io, e.host);
		} else if (e.kind == IMG_EXT_DATA) {
			ret = img_salvage_read(salvage, img, l, &e, off,
					       slot->buf + filled,
					       (size_t)e.length);
			if (ret < 0)
				return ret;
			filled += e.length;
			add_piece(ps, e.length, P_DATA, NULL, 0);
		} else {
			add_piece(ps, e.length, P_ZERO, NULL, 0);
		}
		slot->len += e.length;
		off += e.length;
	}
	return 0;
}

/* An existing target (-n) is written where it stands: it must be big
 * enough, and is neither truncated nor grown. */
static int open_in_place(struct img *img, int fd, struct sink *s)
{
	off_t end = lseek(fd, 0, SEEK_END);
	int dfd;

	if (end < 0)
		return img_error(img, -errno, "cannot get target size: %s",
				 img_strerror(-errno));
	if ((uint64_t)end < img->size)
		return img_error(img, -EINVAL,
				 "target is smaller than the source (%llu < %llu bytes)",
				 (unsigned long long)end,
				 (unsigned long long)img->size);
	dfd = dup(fd);
	if (dfd < 0 || img_io_from_fd(&s->io, dfd, 0) < 0) {
		if (dfd >= 0)
			close(dfd);
		return img_error(img, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Prepare fd for the export: a regular file gets its final size and goes
 * through the I/O layer; zeros to copy are needed for pipes and -S 0. */
static int open_sink(struct img *img, int fd, int allocate,
		     const struct img_convert_opts *o, struct sink *s)
{
	struct stat st;
	int dfd, ret;

	s->fd = fd;
	s->allocate = allocate;
	if (o->in_place) {
		s->overwrite = !o->target_is_zero;
		ret = open_in_place(img, fd, s);
		if (ret < 0)
			return ret;
	} else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		/*
		 * Set the final size first: writes inside the file are
		 * cheaper than ones that extend it. Old contents must go,
		 * but truncating an empty file to 0 is not free: ext4 then
		 * flushes the whole file on close.
		 */
		if ((st.st_size && ftruncate(fd, 0) < 0) ||
		    ftruncate(fd, (off_t)img->size) < 0)
			return img_error(img, -errno, "cannot size output: %s",
					 img_strerror(-errno));
		/* Reserved blocks stay allocated under the holes we leave. */
		if (o->reserve && img->size &&
		    fallocate(fd, 0, 0, (off_t)img->size) < 0)
			return img_error(img, -errno, "cannot preallocate: %s",
					 img_strerror(-errno));
		dfd = dup(fd);
		if (dfd < 0 || img_io_from_fd(&s->io, dfd, 0) < 0) {
			if (dfd >= 0)
				close(dfd);
			return img_error(img, -ENOMEM, "out of memory");
		}
	}
	if (!s->io || allocate || s->overwrite) {
		s->zeros = calloc(1, CHUNK);
		if (!s->zeros) {
			img_io_close(s->io);
			return img_error(img, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

static void close_sink(struct sink *s)
{
	free(s->zeros);
	img_io_close(s->io);
}

int img_export_raw(struct img *img, int fd, const struct img_convert_opts *o)
{
	struct export x = { .gran = (size_t)o->zero_gran,
			    .copier = { .mode = o->copy_mode } };
	struct img_salvage salvage;
	struct img_pipeline *pipe;
	uint64_t off = 0;
	int ret, werr;

	img_salvage_init(&salvage, o);
	ret = open_sink(img, fd, o->zero_gran == 0, o, &x.sink);
	if (ret < 0)
		return ret;
	/* Salvage needs the bytes in hand; a pipe cannot take a copy. */
	x.copy_ok = o->copy_mode != IMG_COPY_READ_WRITE && x.sink.io &&
		    !o->salvaged && (x.scratch = malloc(CHUNK)) != NULL;
	ret = img_pipeline_start(&pipe, NSLOTS, CHUNK, sizeof(struct pieces),
				 write_slot, &x);
	if (ret < 0) {
		close_sink(&x.sink);
		return img_error(img, ret, "cannot start writer: %s",
				 img_strerror(ret));
	}
	while (off < img->size) {
		struct img_pipe_slot *slot;

		ret = img_cancel_point(img, o->cancel);
		if (ret < 0)
			break;          /* what was handed over is written */
		ret = img_pipeline_get(pipe, &slot);
		if (ret < 0)
			break;          /* the writer failed: reported below */
		ret = fill_slot(img, &salvage, &x, off, slot);
		if (ret < 0)
			break;
		img_pipeline_put(pipe);
		off += slot->len;
		if (o->progress)
			o->progress(off, img->size, o->progress_arg);
	}
	img_salvage_flush(&salvage);
	werr = img_pipeline_finish(pipe);
	if (werr < 0 && x.copier.clone_error)
		ret = img_copy_refused(img, &x.copier, img->path, werr);
	else if (werr < 0)
		ret = img_error(img, werr, "cannot write output: %s",
				img_strerror(werr));
	close_sink(&x.sink);
	free(x.scratch);
	return ret;
}
