/* lock.c: QEMU's image locking protocol (lock bytes 100 + bit "held", 200 + bit "not shared") with OFD locks. */
#include <errno.h>
#include <fcntl.h>

#include "img.h"
#include "lock.h"

#define PERM_BASE   100
#define SHARED_BASE 200
#define NPERMS      4

void img_lock_perms(enum img_lock_use use, enum img_lock_role role,
		    int force_share, unsigned *perm, unsigned *shared)
{
	if (use == IMG_LOCK_WRITE) {
		*perm = IMG_PERM_CONSISTENT_READ | IMG_PERM_WRITE |
			IMG_PERM_RESIZE;
		*shared = 0;
		return;
	}
	*perm = use == IMG_LOCK_INFO ? 0 : IMG_PERM_CONSISTENT_READ;
	if (force_share)
		*shared = IMG_PERM_ALL;
	else if (role == IMG_LOCK_IMAGE || use == IMG_LOCK_COPY)
		/* a format's metadata, or data being copied, must not
		 * change under its reader */
		*shared = IMG_PERM_CONSISTENT_READ | IMG_PERM_WRITE_UNCHANGED;
	else if (role == IMG_LOCK_DATA)
		*shared = IMG_PERM_ALL & ~IMG_PERM_RESIZE;
	else
		*shared = IMG_PERM_ALL;
}

int img_lock_fd(int fd, enum img_lock_use use, enum img_lock_role role,
		int force_share)
{
	unsigned perm, shared;

	img_lock_perms(use, role, force_share, &perm, &shared);
	return img_lock_take(fd, perm, shared);
}

#ifdef F_OFD_SETLK

static int set_byte(int fd, int byte, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 if another open file description holds a lock on byte. */
static int byte_taken(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* Whether OFD locks work on fd: the kernel has them (EINVAL if not) and
 * the file system takes locks at all. */
static int can_lock(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	return fcntl(fd, F_OFD_GETLK, &fl) == 0;
}

int img_lock_apply(int fd, unsigned perm, unsigned shared)
{
	for (int i = 0; i < NPERMS; i++) {
		unsigned bit = 1u << i;
		int ret = set_byte(fd, PERM_BASE + i,
				   perm & bit ? F_RDLCK : F_UNLCK);
		if (ret == 0)
			ret = set_byte(fd, SHARED_BASE + i,
				       shared & bit ? F_UNLCK : F_RDLCK);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int img_lock_check(int fd, unsigned perm, unsigned shared, unsigned *bit,
		   int *theirs)
{
	for (int pass = 0; pass < 2; pass++) {
		/* First what we want and they refuse, then what they hold
		 * and we refuse, as QEMU reports them. */
		unsigned want = pass ? ~shared & IMG_PERM_ALL : perm;
		int base = pass ? PERM_BASE : SHARED_BASE;

		for (int i = 0; i < NPERMS; i++) {
			int ret;

			if (!(want & (1u << i)))
				continue;
			ret = byte_taken(fd, base + i);
			if (ret < 0)
				return ret;
			if (ret) {
				*bit = 1u << i;
				*theirs = pass;
				return IMG_E_LOCKED;
			}
		}
	}
	return 0;
}

int img_lock_take(int fd, unsigned perm, unsigned shared)
{
	unsigned bit;
	int theirs, ret;

	if (!can_lock(fd))
		return 0;
	ret = img_lock_apply(fd, perm, shared);
	if (ret == 0)
		ret = img_lock_check(fd, perm, shared, &bit, &theirs);
	if (ret < 0)
		img_lock_apply(fd, 0, IMG_PERM_ALL);
	/* A write lock on one of our bytes is a holder outside the protocol. */
	return ret == -EAGAIN || ret == -EACCES ? IMG_E_LOCKED : ret;
}

#else   /* no OFD locks on this system: QEMU's locking=auto takes none */

int img_lock_apply(int fd, unsigned perm, unsigned shared)
{
	return 0;
}

int img_lock_check(int fd, unsigned perm, unsigned shared, unsigned *bit,
		   int *theirs)
{
	return 0;
}

int img_lock_take(int fd, unsigned perm, unsigned shared)
{
	return 0;
}

#endif
