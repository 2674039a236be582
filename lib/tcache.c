/* tcache.c: least-recently-used cache of metadata tables read from an image file. */
#include <errno.h>
#include <stdlib.h>

#include "imgint.h"
#include "tcache.h"

struct slot {
	uint64_t off;
	uint64_t used;   /* tick of last use; 0 = empty */
	uint8_t *data;
};

struct img_tcache {
	size_t table_bytes;
	int nslots;
	int past_eof_zeros;   /* tables cut off by the end of file read as zeros */
	uint64_t tick;
	struct slot *slots;
};

struct img_tcache *img_tcache_new(size_t table_bytes, int nslots)
{
	struct img_tcache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->slots = calloc(nslots, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->table_bytes = table_bytes;
	c->nslots = nslots;
	return c;
}

void img_tcache_past_eof_zeros(struct img_tcache *c)
{
	c->past_eof_zeros = 1;
}

void img_tcache_free(struct img_tcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nslots; i++)
		free(c->slots[i].data);
	free(c->slots);
	free(c);
}

int img_tcache_get(struct img *img, struct img_tcache *c, const char *what,
		   uint64_t off, const uint8_t **table)
{
	struct slot *victim = &c->slots[0];
	int ret;

	for (int i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];
		if (s->used && s->off == off) {
			s->used = ++c->tick;
			*table = s->data;
			return 0;
		}
		if (s->used < victim->used)
			victim = s;
	}
	if (!victim->data) {
		victim->data = malloc(c->table_bytes);
		if (!victim->data)
			return img_error(img, -ENOMEM, "cannot allocate %s cache",
					 what);
	}
	victim->used = 0;
	if (c->past_eof_zeros) {
		ret = img_io_read_zfill(img->io, victim->data, c->table_bytes, off);
		if (ret < 0)
			return img_error(img, ret, "cannot read %s at 0x%llx: %s",
					 what, (unsigned long long)off,
					 img_strerror(ret));
	} else {
		ret = img_read_meta(img, what, victim->data, c->table_bytes, off);
		if (ret < 0)
			return ret;
	}
	victim->off = off;
	victim->used = ++c->tick;
	*table = victim->data;
	return 0;
}

void img_tcache_drop(struct img_tcache *c, uint64_t off)
{
	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].used && c->slots[i].off == off)
			c->slots[i].used = 0;
}
