/* pipeline.h: an ordered two-stage pipeline: the caller fills buffers while a thread drains them in order. */
#ifndef IMG_PIPELINE_H
#define IMG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reading from one file while writing another overlaps well on two cores:
 * buffered writes of fresh pages block for milliseconds at a time, and the
 * reader can fill the next buffer meanwhile. Slots are consumed strictly in
 * the order they were put, so the consumer may write to a pipe.
 */
struct img_pipe_slot {
	uint8_t *buf;      /* bufsize bytes, owned by the pipeline */
	void *aux;         /* auxsize zeroed bytes for the caller's notes */
	uint64_t off;      /* caller's meaning (e.g. guest offset) */
	uint64_t len;
	int kind;          /* caller's meaning (e.g. data or zeros) */
};

/* Called on the consumer thread for each slot; a negative return stops
 * the pipeline and is reported by get and finish. */
typedef int (*img_pipe_consume_fn)(struct img_pipe_slot *slot, void *arg);

struct img_pipeline;

int img_pipeline_start(struct img_pipeline **out, int nslots, size_t bufsize,
		       size_t auxsize, img_pipe_consume_fn consume, void *arg);
/* Wait for a free slot; returns 0, or the consumer's error. */
int img_pipeline_get(struct img_pipeline *p, struct img_pipe_slot **slot);
/* Hand the slot got last to the consumer. */
void img_pipeline_put(struct img_pipeline *p);
/* Drain what was put, stop the thread, free everything; returns the
 * consumer's first error or 0. */
int img_pipeline_finish(struct img_pipeline *p);

#endif
