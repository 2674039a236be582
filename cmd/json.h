/* json.h: a tiny pretty-printing JSON writer (4-space indent, as qemu-img prints). */
#ifndef IMG_JSON_H
#define IMG_JSON_H

#include <stdint.h>
#include <stdio.h>

struct json {
	FILE *out;
	int depth;
	int first[32];   /* per level: no member written yet */
};

void json_init(struct json *j, FILE *out);
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
