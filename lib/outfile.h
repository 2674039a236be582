/* outfile.h: new output files that appear atomically: written under a temporary name, then renamed. */
#ifndef IMG_OUTFILE_H
#define IMG_OUTFILE_H

struct img_outfile {
	int fd;              /* -1 when none is open */
	char *path;          /* final name */
	char *tmp;           /* temporary name beside it */
};

/* Create a temporary file in path's directory, mode 0644 less umask. */
int img_outfile_create(struct img_outfile *o, const char *path);
/*
 * Rename the temporary file over path. Readers never see a partial file
 * either way; with durable set the data is also on disk before the rename
 * and the directory after it, so that not even a power failure can leave
 * a DST with missing data (qemu-img never syncs; this costs disk time).
 */
int img_outfile_commit(struct img_outfile *o, int durable);
/* Remove the temporary file; safe to call twice and from a signal
 * handler (only unlink and close are used). */
void img_outfile_abort(struct img_outfile *o);

#endif
