/* json.h: a tiny pretty-printing JSON writer (4-space indent, as qemu-img prints). */
#ifndef IMG_JSON_H
#define IMG_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

/* A member of an object held back until the object ends (qemu order). */
struct json_member {
	char *text;        /* "key": value, as printed */
	size_t len;
	unsigned rank;     /* json_qemu_rank(key) */
	int seq;           /* order written */
};

struct json_level {
	FILE *sink;                 /* where the object goes when it ends */
	struct json_member *m;      /* its members so far */
	int n;
};

struct json {
	FILE *out;         /* where the next text goes */
	int depth;
	int first[JSON_MAX_DEPTH];   /* per level: no member written yet */
	int qemu_order;
	int is_object[JSON_MAX_DEPTH];
	struct json_level held[JSON_MAX_DEPTH];
};

void json_init(struct json *j, FILE *out);
/*
 * From now on every object prints its members in the order qemu-img
 * prints them, whatever the order they are written in: QEMU builds the
 * object as a hash table (QDict) and prints it bucket by bucket, which is
 * why `qemu-img info --output=json` begins with "virtual-size" or
 * "snapshots". Arrays keep their order.
 */
void json_qemu_order(struct json *j);
/* Where key comes in such an object: members print by increasing rank
 * (the QDict bucket), and of two with the same rank the later written
 * first, as QEMU inserts at the head of a bucket. */
unsigned json_qemu_rank(const char *key);

/* key is NULL inside arrays and at the top level. */
void json_object(struct json *j, const char *key);
void json_array(struct json *j, const char *key);
void json_end_object(struct json *j);
void json_end_array(struct json *j);
void json_str(struct json *j, const char *key, const char *val);
void json_int(struct json *j, const char *key, int64_t val);
void json_uint(struct json *j, const char *key, uint64_t val);
void json_bool(struct json *j, const char *key, int val);
/* Finish the document with a newline. */
void json_done(struct json *j);

/* Write s as a JSON string literal. */
void json_quote(FILE *out, const char *s);

#endif
