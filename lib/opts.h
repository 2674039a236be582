/* opts.h: format creation options (-o name=value,...): each driver describes its own, parsing is shared. */
#ifndef IMG_OPTS_H
#define IMG_OPTS_H

#include <stddef.h>
#include <stdint.h>

enum img_opt_type {
	IMG_OPT_SIZE,    /* bytes, with k/M/G/T/P/E suffixes */
	IMG_OPT_NUM,     /* a plain unsigned number */
	IMG_OPT_BOOL,    /* on/off (also true/false, yes/no, 1/0) */
	IMG_OPT_STR,     /* text, limited to choices when given */
};

/* One option of a format, as `-o help` lists it. Tables end with a NULL
 * name. */
struct img_opt_desc {
	const char *name;
	enum img_opt_type type;
	const char *help;
	const char *const *choices;  /* IMG_OPT_STR: allowed values, or NULL */
	const char *def;             /* default as text, or NULL for none */
	int announce;                /* listed with its default in the
				      * "Formatting" line even when not set */
};

#define IMG_MAX_OPTS 32

struct img_opt_value {
	int set;
	uint64_t num;                /* SIZE, NUM, BOOL */
	char *str;                   /* STR (and the text of any value) */
};

struct img_opts {
	const struct img_opt_desc *desc;
	int n;
	struct img_opt_value v[IMG_MAX_OPTS];
};

/* Start an empty set for the table desc. */
void img_opts_init(struct img_opts *o, const struct img_opt_desc *desc);
void img_opts_free(struct img_opts *o);

/*
 * Parse "name=value,name=value" (a doubled comma stands for a comma in a
 * value) into o; later settings win. On failure writes a message such as
 * "invalid parameter 'foo'" or "cluster_size: '3x' is not a size" to err.
 */
int img_opts_parse(struct img_opts *o, const char *text, char *err,
		   size_t errlen);
int img_opts_set(struct img_opts *o, const char *name, const char *value,
		 char *err, size_t errlen);

/* Values, falling back to the default of an unset option (0 / NULL when
 * there is none). */
int img_opt_isset(const struct img_opts *o, const char *name);
uint64_t img_opt_num(const struct img_opts *o, const char *name);
const char *img_opt_str(const struct img_opts *o, const char *name);

/* Sizes like 64M, 10G, 1T, 512 (1024-based suffixes k M G T P E). */
int img_parse_size(const char *s, uint64_t *out);

#endif
