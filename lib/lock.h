/* lock.h: QEMU's image locking protocol: OFD byte-range locks on an image file, one byte per permission. */
#ifndef IMG_LOCK_H
#define IMG_LOCK_H

/*
 * QEMU 7.2's permissions (BLK_PERM_*; "graph-mod" is gone since 6.2).
 * Whoever holds a permission keeps a shared (read) lock on byte 100 + bit;
 * whoever does not share one with others keeps one on byte 200 + bit. A
 * conflict is another open file description locking the opposite byte,
 * found with F_OFD_GETLK. The locks go away when the file is closed.
 */
#define IMG_PERM_CONSISTENT_READ 0x1
#define IMG_PERM_WRITE           0x2
#define IMG_PERM_WRITE_UNCHANGED 0x4
#define IMG_PERM_RESIZE          0x8
#define IMG_PERM_ALL             0xf

/* What a file is opened for. */
enum img_lock_use {
	IMG_LOCK_INFO,   /* metadata only, no guest data (qemu-img info) */
	IMG_LOCK_READ,   /* reading guest data or checking metadata */
	IMG_LOCK_COPY,   /* reading guest data that must not change while
			  * read (qemu-img convert's source): no writers */
	IMG_LOCK_WRITE,  /* writing in place */
};

/* What the file is to the image (QEMU's roles of a format's children). */
enum img_lock_role {
	IMG_LOCK_IMAGE,  /* the file of a format with metadata (qcow, qcow2,
			  * QED): others may never write or resize it */
	IMG_LOCK_RAW,    /* a raw image: QEMU's raw format passes everything
			  * through, sharing what its user shares */
	IMG_LOCK_DATA,   /* a qcow2 external data file: others may not resize */
};

/*
 * The permissions QEMU's file node takes for a use and role, and what it
 * shares. force_share (-U, read-only uses only) shares everything. Writing
 * takes consistent read, write and resize and shares nothing: clusters
 * move under any reader.
 */
void img_lock_perms(enum img_lock_use use, enum img_lock_role role,
		    int force_share, unsigned *perm, unsigned *shared);

/* Set the lock bytes of fd for (perm, shared), releasing the others;
 * 0 or -errno (-EAGAIN: someone holds a write lock on a byte). */
int img_lock_apply(int fd, unsigned perm, unsigned shared);

/*
 * Whether another open file description conflicts with (perm, shared) on
 * fd: 0 if none; else IMG_E_LOCKED with the permission in *bit, and *theirs
 * set when it is one they hold that we do not share (clear when it is one
 * we want that they do not share). -errno if the test fails.
 */
int img_lock_check(int fd, unsigned perm, unsigned shared, unsigned *bit,
		   int *theirs);

/*
 * Apply, then check (as QEMU does, so that two openers racing both see
 * each other); on a conflict or error nothing stays locked. Returns 0,
 * IMG_E_LOCKED or -errno. Where the kernel has no OFD locks or the file
 * system no locks at all, it takes nothing and returns 0, as QEMU's
 * default locking=auto does.
 */
int img_lock_take(int fd, unsigned perm, unsigned shared);

/* img_lock_take with the permissions of img_lock_perms. */
int img_lock_fd(int fd, enum img_lock_use use, enum img_lock_role role,
		int force_share);

#endif
