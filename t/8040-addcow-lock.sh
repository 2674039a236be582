#!/bin/sh
# 8040-addcow-lock.sh: a qemu-io writing an add-cow pair's image file or its backing file makes our writing commands refuse; -U reads go on.
test_description='add-cow locks against qemu-io'
. "$(dirname "$0")/lib.sh"

test -r /proc/locks || skip_all 'no /proc/locks to see when a lock is taken'

. "$TEST_DIRECTORY/lib-hold.sh"

# refused CMD...: CMD fails with one line saying the file is in use.
refused() {
	test_must_fail "$@" >/dev/null 2>refused.err &&
	cat refused.err >&2 &&
	test_line_count = 1 refused.err &&
	grep "in use by another process" refused.err >/dev/null
}

# writers_refused [no-convert]: every writing command on p.ac refuses, p.ac and
# disk.raw unchanged; reads with -U work.
writers_refused() {
	cp p.ac p.before && cp disk.raw disk.before &&
	refused img-demote p.ac &&
	refused img-compact p.ac &&
	refused img-check -r all p.ac &&
	{ test "$1" = no-convert ||
	  refused img-convert -n -O add-cow -f raw new.raw p.ac; } &&
	cmp p.before p.ac && cmp disk.before disk.raw &&
	img-info -U p.ac >/dev/null &&
	img-map -U p.ac >/dev/null &&
	rm -f u.raw && img-convert -U -O raw p.ac u.raw &&
	qemu-img compare -q -F raw child.raw u.raw
}

test_expect_success 'setup' '
	qemu-img create -q -f qcow2 base.qcow2 1M &&
	qio qcow2 base.qcow2 "write -P 0x11 0 512k" &&
	img-create -q -f add-cow -o image_file=disk.raw -b base.qcow2 -F qcow2 p.ac &&
	qemu-io -f raw -c "write -P 0x22 0 64k" -c "write -P 0 640k 64k" disk.raw >/dev/null &&
	printf "\\001\\004" | dd of=p.ac bs=1 seek=4096 conv=notrunc 2>/dev/null &&
	img-convert -O raw p.ac child.raw &&
	head -c 1048576 /dev/urandom >new.raw
'

test_expect_success 'qemu-io writing the image file: writers refuse, -U reads' '
	hold disk.raw -f raw &&
	writers_refused;
	ret=$?; unhold; test $ret = 0
'

test_expect_success 'qemu-io writing the backing file: writers refuse, -U reads' '
	hold base.qcow2 -f qcow2 &&
	writers_refused no-convert;
	ret=$?; unhold; test $ret = 0
'

# img-convert -n opens the pair without its backing file, so it takes no
# lock there (cmd/img-convert.c: the lead's part).
test_expect_success 'qemu-io writing the backing file: img-convert -n refuses' '
	cp p.ac p.keep && cp disk.raw disk.keep &&
	hold base.qcow2 -f qcow2 &&
	refused img-convert -n -O add-cow -f raw new.raw p.ac;
	ret=$?; unhold
	cp p.keep p.ac && cp disk.keep disk.raw && test $ret = 0
'

test_expect_success 'no holder: the same commands go through' '
	img-compact -q p.ac &&
	img-check -r all p.ac >/dev/null &&
	img-demote -q p.ac &&
	qemu-img compare -q -f raw -F raw child.raw disk.raw
'

test_done
