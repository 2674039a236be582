/* opts.c: parsing and looking up format creation options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgint.h"
#include "opts.h"

int img_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "bkmgtpe";
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *p = s;
	int shift = 0;

	if (!s || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++)
		if (img_mul_overflows(whole, 10, &whole) ||
		    img_add_overflows(whole, (uint64_t)(*p - '0'), &whole))
			return -ERANGE;
	/* A fraction, as in 1.5G, needs a unit to make it whole bytes. */
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale < 1000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
	}
	if (*p) {
		const char *u = strchr(units, *p | 0x20);
		if (!u || !*u || p[1])
			return -EINVAL;
		shift = (int)(u - units) * 10;
	} else if (scale > 1) {
		return -EINVAL;
	}
	if (shift && whole > (UINT64_MAX >> shift))
		return -ERANGE;
	whole <<= shift;
	/* frac / scale of a unit, rounded down to bytes */
	if (frac) {
		uint64_t unit = 1ULL << shift, part;
		if (unit > UINT64_MAX / frac)
			part = frac / scale * unit;   /* huge units: coarser */
		else
			part = frac * unit / scale;
		if (img_add_overflows(whole, part, &whole))
			return -ERANGE;
	}
	*out = whole;
	return 0;
}

void img_opts_init(struct img_opts *o, const struct img_opt_desc *desc)
{
	memset(o, 0, sizeof(*o));
	o->desc = desc;
	while (desc[o->n].name && o->n < IMG_MAX_OPTS)
		o->n++;
}

void img_opts_free(struct img_opts *o)
{
	for (int i = 0; i < o->n; i++)
		free(o->v[i].str);
	memset(o->v, 0, sizeof(o->v));
}

static int find(const struct img_opts *o, const char *name)
{
	for (int i = 0; i < o->n; i++)
		if (!strcmp(o->desc[i].name, name))
			return i;
	return -1;
}

static int parse_bool(const char *s, uint64_t *out)
{
	static const char *yes[] = { "on", "true", "yes", "1" };
	static const char *no[] = { "off", "false", "no", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* The value text as the option's type reads it into *v. */
static int convert(const struct img_opt_desc *d, const char *value,
		   struct img_opt_value *v, char *err, size_t errlen)
{
	char *end;

	switch (d->type) {
	case IMG_OPT_SIZE:
		if (img_parse_size(value, &v->num) < 0) {
			snprintf(err, errlen, "%s: '%s' is not a size", d->name,
				 value);
			return -EINVAL;
		}
		return 0;
	case IMG_OPT_NUM:
		errno = 0;
		v->num = strtoull(value, &end, 10);
		if (!*value || *end || errno || *value == '-') {
			snprintf(err, errlen, "%s: '%s' is not a number",
				 d->name, value);
			return -EINVAL;
		}
		return 0;
	case IMG_OPT_BOOL:
		if (parse_bool(value, &v->num) < 0) {
			snprintf(err, errlen, "%s: '%s' is not on or off",
				 d->name, value);
			return -EINVAL;
		}
		return 0;
	case IMG_OPT_STR:
		if (d->choices) {
			for (const char *const *c = d->choices; *c; c++)
				if (!strcmp(*c, value))
					return 0;
			snprintf(err, errlen, "%s: '%s' is not one of the allowed values",
				 d->name, value);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

int img_opts_set(struct img_opts *o, const char *name, const char *value,
		 char *err, size_t errlen)
{
	int i = find(o, name);
	struct img_opt_value v = { 0 };
	int ret;

	if (i < 0) {
		snprintf(err, errlen, "invalid parameter '%s'", name);
		return -EINVAL;
	}
	ret = convert(&o->desc[i], value, &v, err, errlen);
	if (ret < 0)
		return ret;
	v.str = strdup(value);
	if (!v.str)
		return -ENOMEM;
	v.set = 1;
	free(o->v[i].str);
	o->v[i] = v;
	return 0;
}

int img_opts_parse(struct img_opts *o, const char *text, char *err,
		   size_t errlen)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	const char *p = text;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (*p && ret == 0) {
		size_t n = 0;
		char *eq;

		/* One "name=value" up to a single comma; ",," is a comma. */
		while (*p) {
			if (*p == ',' && p[1] == ',') {
				buf[n++] = ',';
				p += 2;
			} else if (*p == ',') {
				p++;
				break;
			} else {
				buf[n++] = *p++;
			}
		}
		buf[n] = 0;
		if (!n)
			continue;
		eq = strchr(buf, '=');
		if (!eq) {
			snprintf(err, errlen, "parameter '%s' needs a value (name=value)",
				 buf);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		ret = img_opts_set(o, buf, eq + 1, err, errlen);
	}
	free(buf);
	return ret;
}

int img_opt_isset(const struct img_opts *o, const char *name)
{
	int i = find(o, name);

	return i >= 0 && o->v[i].set;
}

uint64_t img_opt_num(const struct img_opts *o, const char *name)
{
	int i = find(o, name);
	struct img_opt_value v = { 0 };
	char err[8];

	if (i < 0)
		return 0;
	if (o->v[i].set)
		return o->v[i].num;
	if (o->desc[i].def && convert(&o->desc[i], o->desc[i].def, &v, err,
				      sizeof(err)) == 0)
		return v.num;
	return 0;
}

const char *img_opt_str(const struct img_opts *o, const char *name)
{
	int i = find(o, name);

	if (i < 0)
		return NULL;
	return o->v[i].set ? o->v[i].str : o->desc[i].def;
}
