/* tcache.h: a small cache of on-disk metadata tables (L2 tables) keyed by host offset. */
#ifndef IMG_TCACHE_H
#define IMG_TCACHE_H

#include <stddef.h>
#include <stdint.h>

struct img;
struct img_tcache;

/* A cache of nslots tables of table_bytes each (NULL: out of memory). */
struct img_tcache *img_tcache_new(size_t table_bytes, int nslots);
void img_tcache_free(struct img_tcache *c);

/* From now on, the part of a table beyond the end of the file reads as
 * zeros instead of failing, as QEMU reads qcow2 L2 tables. */
void img_tcache_past_eof_zeros(struct img_tcache *c);

/*
 * Point *table at the table_bytes bytes stored at host offset off of
 * img->io, reading them on a miss (least recently used slot is reused).
 * On failure records an error on img naming `what` and returns its code.
 * The pointer stays valid until the next img_tcache_get on this cache.
 */
int img_tcache_get(struct img *img, struct img_tcache *c, const char *what,
		   uint64_t off, const uint8_t **table);

/* Forget a cached copy (after the table was rewritten on disk). */
void img_tcache_drop(struct img_tcache *c, uint64_t off);

#endif
