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
/* fsync, rename over path, fsync the directory. */
int img_outfile_commit(struct img_outfile *o);
/* Remove the temporary file; safe to call twice and from a signal
 * handler (only unlink and close are used). */
void img_outfile_abort(struct img_outfile *o);

#endif
