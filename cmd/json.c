/* json.c: the JSON writer behind --output=json. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

void json_init(struct json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->first[0] = 1;
}

void json_qemu_order(struct json *j)
{
	j->qemu_order = 1;
}

/*
 * QEMU's QDict has 512 buckets and hashes a key with the gdbm string
 * hash: a seed from the length, each byte added shifted by 5 bits more
 * (modulo 24) than the one before, then a linear congruential step.
 */
unsigned json_qemu_rank(const char *key)
{
	size_t n = strlen(key);
	uint32_t h = 0x238f13afu * (uint32_t)n;

	for (size_t i = 0; i < n; i++)
		h += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
	return (1103515243u * h + 12345u) % 512;
}

void json_quote(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void indent(FILE *out, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("    ", out);
}

/* Whether the members of the current level are held back and sorted. */
static int holding(const struct json *j)
{
	return j->qemu_order && j->depth > 0 && j->is_object[j->depth];
}

/* The member written so far at a holding level is complete. */
static void finish_held(struct json *j)
{
	struct json_level *l = &j->held[j->depth];

	if (l->n && j->out != l->sink) {
		if (fclose(j->out) != 0)
			cli_die(EXIT_FAIL, "out of memory");
		j->out = l->sink;
	}
}

/* A held member starts: its text goes to a buffer of its own. */
static void hold_member(struct json *j, const char *key)
{
	struct json_level *l = &j->held[j->depth];
	struct json_member *m;

	finish_held(j);
	m = realloc(l->m, (size_t)(l->n + 1) * sizeof(*m));
	if (!m)
		cli_die(EXIT_FAIL, "out of memory");
	l->m = m;
	m += l->n;
	m->text = NULL;
	m->len = 0;
	m->rank = json_qemu_rank(key ? key : "");
	m->seq = l->n++;
	j->out = open_memstream(&m->text, &m->len);
	if (!j->out)
		cli_die(EXIT_FAIL, "out of memory");
}

/* Separator, newline and indent before a member, then its key. */
static void member(struct json *j, const char *key)
{
	if (holding(j)) {
		hold_member(j, key);
	} else if (j->depth > 0) {
		fputs(j->first[j->depth] ? "\n" : ",\n", j->out);
		indent(j->out, j->depth);
	}
	j->first[j->depth] = 0;
	if (key) {
		json_quote(j->out, key);
		fputs(": ", j->out);
	}
}

static int by_rank(const void *a, const void *b)
{
	const struct json_member *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return y->seq - x->seq;
}

/* A holding level ends: print its members in qemu's order. */
static void flush_held(struct json *j)
{
	struct json_level *l = &j->held[j->depth];

	finish_held(j);
	qsort(l->m, (size_t)l->n, sizeof(*l->m), by_rank);
	for (int i = 0; i < l->n; i++) {
		fputs(i ? ",\n" : "\n", j->out);
		indent(j->out, j->depth);
		fwrite(l->m[i].text, 1, l->m[i].len, j->out);
		free(l->m[i].text);
	}
	free(l->m);
	l->m = NULL;
	l->n = 0;
}

static void open_level(struct json *j, const char *key, char c)
{
	member(j, key);
	fputc(c, j->out);
	if (j->depth < JSON_MAX_DEPTH - 1)
		j->depth++;
	j->first[j->depth] = 1;
	j->is_object[j->depth] = c == '{';
	j->held[j->depth].sink = j->out;
}

/* As qemu-img: the closing bracket on a line of its own, even when the
 * level is empty. */
static void close_level(struct json *j, char c)
{
	if (holding(j))
		flush_held(j);
	if (j->depth > 0)
		j->depth--;
	fputc('\n', j->out);
	indent(j->out, j->depth);
	fputc(c, j->out);
}

void json_object(struct json *j, const char *key)
{
	open_level(j, key, '{');
}

void json_array(struct json *j, const char *key)
{
	open_level(j, key, '[');
}

void json_end_object(struct json *j)
{
	close_level(j, '}');
}

void json_end_array(struct json *j)
{
	close_level(j, ']');
}

void json_str(struct json *j, const char *key, const char *val)
{
	member(j, key);
	json_quote(j->out, val ? val : "");
}

void json_int(struct json *j, const char *key, int64_t val)
{
	member(j, key);
	fprintf(j->out, "%" PRId64, val);
}

void json_uint(struct json *j, const char *key, uint64_t val)
{
	member(j, key);
	fprintf(j->out, "%" PRIu64, val);
}

void json_bool(struct json *j, const char *key, int val)
{
	member(j, key);
	fputs(val ? "true" : "false", j->out);
}

void json_done(struct json *j)
{
	fputc('\n', j->out);
}
