/* outfile.h: new output files that appear atomically: written under a temporary name, then renamed. */
#ifndef IMG_OUTFILE_H
#define IMG_OUTFILE_H

struct img_outfile {
	int fd;              /* -1 when none is open */
	char *path;          /* final name */
	char *tmp;           /* temporary name beside it */
};

/*
 * What an output name stands for, symbolic links followed: nothing yet (a
 * new file, also behind a dangling link), a regular file (replaced), a
 * directory, or a device, FIFO or socket (written through, never
 * replaced). Returns the kind, or -errno when the name cannot be looked up.
 */
enum img_out_kind {
	IMG_OUT_NEW,
	IMG_OUT_REGULAR,
	IMG_OUT_DIR,
	IMG_OUT_SPECIAL,
};
int img_outfile_kind(const char *path);

/*
 * The file a name finally stands for: symbolic links at the last
 * component followed (relative targets resolved against the link's
 * directory), so that the file they name is the one replaced, in its own
 * directory, and a link is never renamed over. malloc'ed; NULL without
 * memory, and the name itself on a loop (the rename then fails).
 */
char *img_outfile_resolve(const char *path);

/* Create a temporary file in the directory of the file path names
 * (symbolic links followed), mode 0644 less umask. */
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

/* A temporary file in dir with no name (O_TMPFILE, else named and removed
 * at once): nothing is left to clean up, whatever happens. Returns the
 * descriptor (read-write) or -errno. */
int img_outfile_anon(const char *dir);

#endif
