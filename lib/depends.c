/* depends.c: whether a file is one an open image depends on (itself, a backing file, an external data file), by device and inode. */
#include <sys/stat.h>

#include "imgint.h"

/* The external data file of layer l is (dev, ino): the open one, or the
 * one its name gives (drivers open it when data is first read). */
static int is_data_file(const struct img *l, uint64_t dev, uint64_t ino)
{
	struct stat st;

	if (l->data_io && l->data_io != l->io && l->data_io->fd >= 0) {
		if (fstat(l->data_io->fd, &st) < 0)
			return 0;
	} else if (!l->data_path || stat(l->data_path, &st) < 0) {
		return 0;
	}
	return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

int img_depends_on(const struct img *img, uint64_t dev, uint64_t ino,
		   const char **role)
{
	int d = 0;

	for (const struct img *l = img; l; l = l->backing, d++) {
		if ((uint64_t)l->dev == dev && (uint64_t)l->ino == ino) {
			*role = d ? "a backing file" : "the image itself";
			return d;
		}
		if (is_data_file(l, dev, ino)) {
			*role = d ? "the external data file of a backing file"
				  : "the external data file";
			return d;
		}
	}
	*role = NULL;
	return -1;
}
