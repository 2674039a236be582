/* pipeline.c: the ordered producer/consumer pipeline (one consumer thread, a ring of buffers). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "imgint.h"
#include "pipeline.h"

struct img_pipeline {
	struct img_pipe_slot *slots;
	int nslots;
	int head;          /* next slot the producer fills */
	int tail;          /* next slot the consumer drains */
	int count;         /* slots put and not yet drained */
	int done;          /* producer finished */
	int err;           /* consumer's first error */
	img_pipe_consume_fn consume;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t put, drained;
};

static void consume_all(struct img_pipeline *p)
{
	for (;;) {
		struct img_pipe_slot *s;
		int ret;

		pthread_mutex_lock(&p->mu);
		while (!p->count && !p->done)
			pthread_cond_wait(&p->put, &p->mu);
		if (!p->count) {
			pthread_mutex_unlock(&p->mu);
			return;
		}
		s = &p->slots[p->tail];
		pthread_mutex_unlock(&p->mu);

		ret = p->consume(s, p->arg);

		pthread_mutex_lock(&p->mu);
		p->tail = (p->tail + 1) % p->nslots;
		p->count--;
		if (ret < 0 && !p->err)
			p->err = ret;
		pthread_cond_signal(&p->drained);
		pthread_mutex_unlock(&p->mu);
		if (ret < 0)
			return;
	}
}

static void *consumer(void *arg)
{
	consume_all(arg);
	img_codec_thread_end();   /* the consumer may have (de)compressed */
	return NULL;
}

static void free_pipeline(struct img_pipeline *p)
{
	for (int i = 0; i < p->nslots; i++) {
		free(p->slots[i].buf);
		free(p->slots[i].aux);
	}
	free(p->slots);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->put);
	pthread_cond_destroy(&p->drained);
	free(p);
}

int img_pipeline_start(struct img_pipeline **out, int nslots, size_t bufsize,
		       size_t auxsize, img_pipe_consume_fn consume, void *arg)
{
	struct img_pipeline *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->put, NULL);
	pthread_cond_init(&p->drained, NULL);
	p->nslots = nslots;
	p->consume = consume;
	p->arg = arg;
	p->slots = calloc(nslots, sizeof(*p->slots));
	if (!p->slots) {
		free_pipeline(p);
		return -ENOMEM;
	}
	for (int i = 0; i < nslots; i++) {
		p->slots[i].buf = aligned_alloc(4096, bufsize);
		p->slots[i].aux = auxsize ? calloc(1, auxsize) : NULL;
		if (!p->slots[i].buf || (auxsize && !p->slots[i].aux)) {
			free_pipeline(p);
			return -ENOMEM;
		}
	}
	if (pthread_create(&p->thread, NULL, consumer, p)) {
		free_pipeline(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

int img_pipeline_get(struct img_pipeline *p, struct img_pipe_slot **slot)
{
	int err;

	pthread_mutex_lock(&p->mu);
	while (p->count == p->nslots && !p->err)
		pthread_cond_wait(&p->drained, &p->mu);
	err = p->err;
	*slot = &p->slots[p->head];
	pthread_mutex_unlock(&p->mu);
	return err;
}

void img_pipeline_put(struct img_pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	p->head = (p->head + 1) % p->nslots;
	p->count++;
	pthread_cond_signal(&p->put);
	pthread_mutex_unlock(&p->mu);
}

int img_pipeline_finish(struct img_pipeline *p)
{
	int err;

	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_signal(&p->put);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	err = p->err;
	free_pipeline(p);
	return err;
}
