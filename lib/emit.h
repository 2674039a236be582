/* emit.h: an image written to a pipe in file order, by converting twice: a plan of its tables, then the bytes in order. */
#ifndef IMG_EMIT_H
#define IMG_EMIT_H

#include <stdint.h>

struct img;
struct img_copy_src;
struct img_io;

/*
 * A qcow, qcow2 or QED image cannot be written front to back as it is
 * made: its tables are written after the data they map. To send one down
 * a pipe without holding it whole, the conversion runs twice into two
 * targets laid out identically (the conversion is deterministic):
 *  - planning: tables and headers go to the target's (sparse, temporary)
 *    file; guest data is not written at all: the plan is the image with
 *    holes for its data;
 *  - emitting: each guest data write, in increasing file order, is
 *    preceded on the stream by what the plan holds before it (tables,
 *    holes as zeros); the target's own tables are written to its file as
 *    usual, to be compared with the plan at the end.
 * img_emit_finish then sends the rest of the plan: the stream is byte for
 * byte the file a regular output gets.
 */
struct img_emit {
	int planning;           /* 1: the first pass */
	int out;                /* emitting: the stream */
	int plan_fd;            /* emitting: the planning pass's file */
	uint64_t pos;           /* bytes sent so far */
};

/* Attach e to a target opened writable, before img_convert. */
void img_emit_attach(struct img *img, struct img_emit *e);
/* Send the plan from e->pos to its end; then the target's file (fd)
 * must hold the same tables as the plan. -errno, or -EPROTO when the
 * passes differed. */
int img_emit_finish(struct img_emit *e, int fd);

/* copy.c's data path: whether buf is guest data the converter handed
 * over (the chunk's clusters or their compressed bytes). */
int img_emit_is_data(const struct img_copy_src *s, const uint8_t *buf);
/* The guest data write (buf, len at host) of a target with an emitter. */
int img_emit_data(struct img *img, const uint8_t *buf, uint64_t len,
		  uint64_t host);

#endif
