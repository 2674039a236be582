/* addcow.h: add-cow on-disk layout (man/img-formats.5) and the reader state the writer, check, compact and demote share. */
#ifndef IMG_ADDCOW_H
#define IMG_ADDCOW_H

#include <stdint.h>

#include "imgint.h"
#include "opts.h"

/*
 * An add-cow file is a header, the file names it holds, then the COW
 * bitmap at header_size: bit (i % 8) of byte i / 8 is set when guest
 * cluster i has been written to the image file (read it there), clear
 * when it reads from the backing file (or zeros without one). The guest
 * data lives in the image file (raw) at its natural offsets; the disk is
 * as big as the image file. All numbers are little-endian.
 */
#define IMG_ADDCOW_MAGIC        "ADD_COW\xff"
#define IMG_ADDCOW_FIXED        80u      /* bytes of fixed fields */
#define IMG_ADDCOW_FMT_LEN      16u      /* backing_fmt, image_fmt fields */
#define IMG_ADDCOW_NAME_MAX     1023u
#define IMG_ADDCOW_MIN_BITS     9u       /* 512-byte clusters */
#define IMG_ADDCOW_MAX_BITS     21u      /* 2 MiB clusters */
#define IMG_ADDCOW_DEF_BITS     16u
#define IMG_ADDCOW_HEADER_SIZE  4096u    /* what we write */
#define IMG_ADDCOW_MAX_HEADER   (2u << 20)
#define IMG_ADDCOW_F_KNOWN      0ULL     /* no incompatible feature yet */
/* Our cap on the bitmap (2^33 clusters: 512 TiB with 64 KiB clusters),
 * which every pass over it walks. */
#define IMG_ADDCOW_MAX_BITMAP   (1ULL << 30)

struct img_addcow_header {
	uint32_t backing_offset, backing_size;
	uint32_t image_offset, image_size;
	uint64_t features, optional_features;
	uint32_t cluster_bits;
	uint32_t header_size;
	char backing_fmt[IMG_ADDCOW_FMT_LEN + 1];
	char image_fmt[IMG_ADDCOW_FMT_LEN + 1];
};

/* How many bitmap bytes a window of the bitmap caches. */
#define IMG_ADDCOW_WINDOW (64u << 10)

/* Reader state (img->priv). */
struct addcow {
	struct img_addcow_header h;
	char *image_name;            /* as stored */
	uint64_t clusters;           /* guest clusters: size / cluster, rounded up */
	uint64_t bitmap_bytes;       /* bytes the bitmap needs for them */
	uint64_t bitmap_stored;      /* bytes the file holds past header_size */
	/* A window of the bitmap: bytes [win_at, win_at + win_len). The
	 * writer changes bits there and writes the dirty part back. */
	uint8_t win[IMG_ADDCOW_WINDOW];
	uint64_t win_at, win_len;
	uint64_t dirty_from, dirty_to;   /* window bytes to write back */
};

/* Encode/decode the fixed fields (IMG_ADDCOW_FIXED bytes at buf). */
void img_addcow_decode(const uint8_t *buf, struct img_addcow_header *h);
void img_addcow_encode(uint8_t *buf, const struct img_addcow_header *h);

/* Bitmap bytes needed for a disk of size bytes with 2^bits clusters. */
uint64_t img_addcow_bitmap_bytes(uint64_t size, unsigned bits);

/* Whether guest cluster cl is set (1), clear (0), or an error. */
int img_addcow_bit(struct img *img, uint64_t cl);
/* How many of clusters [first, first + n) are set, a byte at a time. */
int img_addcow_count_set(struct img *img, uint64_t first, uint64_t n,
			 uint64_t *set);
/* Set or clear bits of clusters [first, first + n) in the window, to be
 * written back by img_addcow_flush_bits; moving the window writes the
 * dirty part back first (after flushing the image file when in place). */
int img_addcow_set_bits(struct img *img, uint64_t first, uint64_t n, int set);
/* Write back the dirty bitmap bytes. When in place (img->write_in_place),
 * the image file's data is made durable first, then the bitmap. */
int img_addcow_flush_bits(struct img *img);

extern const struct img_opt_desc img_addcow_create_opts[];
struct img_opts;
int img_addcow_create(struct img *img, const struct img_opts *o);
/* img-create's size when none is given: the image file's, if it exists
 * (1: *size set; 0: no such file; < 0: error on img). */
int img_addcow_create_size(struct img *img, const char *path,
			   const struct img_opts *o, uint64_t *size);

extern const struct img_writer_ops img_addcow_writer;
struct img_check_ctx;
int img_addcow_check(struct img_check_ctx *c);
/* Clear the bits past the disk and cut the bitmap to the length the
 * disk needs (check -r, and demote, which leaves a clean pair). */
int img_addcow_clear_stray(struct img *img);
int img_addcow_compact(struct img *img, const struct img_compact_opts *o,
		       struct img_compact_result *r);
int img_addcow_demote(struct img *img, const struct img_demote_opts *o,
		      struct img_demote_result *r);

#endif
