/* test-lock.c: unit tests of lib/lock.c: QEMU's lock bytes between open file descriptions of one file. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "img.h"
#include "lock.h"
#include "unit.h"

static const char *path;

/* A new open file description of the test file (each has its own locks). */
static int reopen(void)
{
	return open(path, O_RDWR | O_CLOEXEC);
}

static int take(int fd, enum img_lock_use use, enum img_lock_role role,
		int force)
{
	return img_lock_fd(fd, use, role, force);
}

/* Whether some description holds a lock on byte (seen from a new one). */
static int byte_held(int byte)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };
	int fd = reopen();
	int ret;

	ret = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return ret;
}

static void test_perms(void)
{
	unsigned perm, shared;

	img_lock_perms(IMG_LOCK_READ, IMG_LOCK_IMAGE, 0, &perm, &shared);
	tap_ok(perm == IMG_PERM_CONSISTENT_READ &&
	       shared == (IMG_PERM_CONSISTENT_READ | IMG_PERM_WRITE_UNCHANGED),
	       "lock: a qcow2 reader wants consistent read, refuses write and resize (qemu-img map)");
	img_lock_perms(IMG_LOCK_INFO, IMG_LOCK_IMAGE, 0, &perm, &shared);
	tap_ok(perm == 0 && shared == (IMG_PERM_CONSISTENT_READ |
				       IMG_PERM_WRITE_UNCHANGED),
	       "lock: info wants nothing, refuses write and resize (qemu-img info)");
	img_lock_perms(IMG_LOCK_READ, IMG_LOCK_RAW, 0, &perm, &shared);
	tap_ok(perm == IMG_PERM_CONSISTENT_READ && shared == IMG_PERM_ALL,
	       "lock: a raw reader shares everything");
	img_lock_perms(IMG_LOCK_READ, IMG_LOCK_DATA, 0, &perm, &shared);
	tap_ok(perm == IMG_PERM_CONSISTENT_READ &&
	       shared == (IMG_PERM_ALL & ~IMG_PERM_RESIZE),
	       "lock: a data file reader refuses only resize");
	img_lock_perms(IMG_LOCK_READ, IMG_LOCK_IMAGE, 1, &perm, &shared);
	tap_ok(perm == IMG_PERM_CONSISTENT_READ && shared == IMG_PERM_ALL,
	       "lock: force-share shares everything");
	img_lock_perms(IMG_LOCK_WRITE, IMG_LOCK_IMAGE, 0, &perm, &shared);
	tap_ok(perm == (IMG_PERM_CONSISTENT_READ | IMG_PERM_WRITE |
			IMG_PERM_RESIZE) && shared == 0,
	       "lock: a writer wants read, write, resize and shares nothing");
}

static void test_conflicts(void)
{
	int a = reopen(), b = reopen(), c = reopen();
	unsigned bit = 0;
	int theirs = -1;

	if (!tap_ok(a >= 0 && b >= 0 && c >= 0, "lock: open the file thrice"))
		return;
	tap_ok(take(a, IMG_LOCK_READ, IMG_LOCK_IMAGE, 0) == 0 &&
	       take(b, IMG_LOCK_READ, IMG_LOCK_IMAGE, 0) == 0,
	       "lock: two readers");
	tap_ok(byte_held(100) && byte_held(201) && byte_held(203) &&
	       !byte_held(101) && !byte_held(200) && !byte_held(202),
	       "lock: a reader holds bytes 100, 201 and 203 only");
	tap_ok(take(c, IMG_LOCK_WRITE, IMG_LOCK_IMAGE, 0) == IMG_E_LOCKED,
	       "lock: a writer is refused while readers hold the file");
	tap_ok(img_lock_check(c, IMG_PERM_WRITE, IMG_PERM_ALL, &bit,
			      &theirs) == IMG_E_LOCKED &&
	       bit == IMG_PERM_WRITE && theirs == 0,
	       "lock: check names write as the permission the readers refuse");
	tap_ok(img_lock_check(c, 0, IMG_PERM_ALL & ~IMG_PERM_CONSISTENT_READ,
			      &bit, &theirs) == IMG_E_LOCKED &&
	       bit == IMG_PERM_CONSISTENT_READ && theirs == 1,
	       "lock: check names consistent read as one they hold that we refuse");
	close(a);
	close(b);
	tap_ok(!byte_held(100) && !byte_held(200) && !byte_held(201),
	       "lock: closing releases, and the refused writer took nothing");
	tap_ok(take(c, IMG_LOCK_WRITE, IMG_LOCK_IMAGE, 0) == 0,
	       "lock: the writer once the readers are gone");
	a = reopen();
	b = reopen();
	tap_ok(take(a, IMG_LOCK_READ, IMG_LOCK_IMAGE, 0) == IMG_E_LOCKED &&
	       take(a, IMG_LOCK_INFO, IMG_LOCK_IMAGE, 0) == IMG_E_LOCKED &&
	       take(a, IMG_LOCK_READ, IMG_LOCK_RAW, 0) == IMG_E_LOCKED &&
	       take(a, IMG_LOCK_READ, IMG_LOCK_IMAGE, 1) == IMG_E_LOCKED,
	       "lock: readers, info and -U readers are refused while a writer works");
	tap_ok(take(b, IMG_LOCK_INFO, IMG_LOCK_IMAGE, 1) == 0,
	       "lock: info with -U takes nothing and passes");
	close(c);
	c = reopen();
	/* qemu-io on a raw image: read and write, everything shared. */
	tap_ok(img_lock_take(c, IMG_PERM_CONSISTENT_READ | IMG_PERM_WRITE,
			     IMG_PERM_ALL) == 0 &&
	       take(a, IMG_LOCK_READ, IMG_LOCK_RAW, 0) == 0 &&
	       take(b, IMG_LOCK_READ, IMG_LOCK_IMAGE, 0) == IMG_E_LOCKED,
	       "lock: a raw reader shares with a writer, a qcow2 reader does not");
	close(a);
	close(b);
	close(c);
}

void test_lock(void)
{
	static char name[] = "img-unit-lock.XXXXXX";   /* in the trash dir */
	int fd = mkstemp(name);

	if (!tap_ok(fd >= 0, "lock: make a test file"))
		return;
	close(fd);
	path = name;
	test_perms();
	test_conflicts();
	unlink(name);
}
