#!/bin/sh
# 2050-convert-stdout.sh: img-convert -O raw to stdout, to sparse files, -S, -p/-q, and refusing a terminal.
test_description='img-convert output: stdout, pipes, sparseness, terminal refusal'
. "$(dirname "$0")/lib.sh"

if script -qec true /dev/null >/dev/null 2>&1; then
	test_set_prereq PTY
fi

test_expect_success 'setup: a qcow2 image with scattered data' '
	qemu-img create -q -f qcow2 src.qcow2 64M &&
	qio qcow2 src.qcow2 "write -P 0x11 0 64k" "write -P 0x12 10M 1M" \
		"write -z 20M 64k" "write -P 0x13 67107840 1024" &&
	qemu-img convert -O raw src.qcow2 expect.raw &&
	img-convert -O raw src.qcow2 file.raw &&
	cmp expect.raw file.raw
'

test_expect_success 'stdout into a pipe equals the file export' '
	{ img-convert -O raw src.qcow2 -; echo $? >rc; } | cat >piped.raw &&
	test "$(cat rc)" = 0 &&
	cmp expect.raw piped.raw
'

test_expect_success 'stdout redirected to a file equals the file export' '
	img-convert -O raw src.qcow2 - >redirected.raw &&
	cmp expect.raw redirected.raw
'

test_expect_success 'stdout works for every source format' '
	qemu-img convert -O qed src.qcow2 src.qed &&
	qemu-img convert -O qcow src.qcow2 src.qcow &&
	for f in src.qed src.qcow expect.raw; do
		img-convert -O raw $f - | cat >out.raw &&
		cmp expect.raw out.raw || return 1
	done
'

test_expect_success PTY 'refuses to write to a terminal' '
	script -qec "img-convert -O raw src.qcow2 -" /dev/null >tty.out 2>&1
	code=$? &&
	test $code -ge 1 && test $code -le 124 &&
	test $(wc -c <tty.out) -lt 1000 &&
	grep "img-convert: " tty.out
'

test_expect_success 'file output is sparse' '
	test $(stat -c %b file.raw) -lt $((8 * 1024 * 2)) &&
	test $(stat -c %s file.raw) = $((64 * 1024 * 1024))
'

test_expect_success 'zero data blocks become holes too (scan, not only metadata)' '
	qemu-img create -q -f qcow2 zeros.qcow2 16M &&
	qio qcow2 zeros.qcow2 "write -P 0 0 8M" "write -P 1 12M 4k" &&
	img-convert -O raw zeros.qcow2 zeros.raw &&
	qemu-img convert -O raw zeros.qcow2 zeros.expect &&
	cmp zeros.expect zeros.raw &&
	test $(stat -c %b zeros.raw) -lt $((1024 * 2))
'

test_expect_success '-S 0 writes every block, as qemu-img does' '
	img-convert -O raw -S 0 zeros.qcow2 full.raw &&
	cmp zeros.expect full.raw &&
	test $(stat -c %b full.raw) -ge $((16 * 1024 * 2))
'

test_expect_success '-S with other sizes gives the same bytes' '
	img-convert -O raw -S 64k src.qcow2 s64k.raw &&
	cmp expect.raw s64k.raw &&
	img-convert -O raw -S 512 src.qcow2 s512.raw &&
	cmp expect.raw s512.raw
'

test_expect_success 'a bad -S is a usage error' '
	test_expect_code 2 img-convert -O raw -S 1000 src.qcow2 bad.raw &&
	test_expect_code 2 img-convert -O raw -S nonsense src.qcow2 bad.raw &&
	! test -e bad.raw
'

test_expect_success '-p and -q do not change the output' '
	img-convert -p -O raw src.qcow2 p.raw 2>p.err &&
	cmp expect.raw p.raw &&
	img-convert -q -p -O raw src.qcow2 q.raw 2>q.err &&
	cmp expect.raw q.raw &&
	test_must_fail test -s q.err
'

test_expect_success 'an existing destination is replaced' '
	truncate -s 100M exists.raw &&
	printf xxxx | dd of=exists.raw bs=1 seek=1000 conv=notrunc 2>/dev/null &&
	printf xxxx | dd of=exists.raw bs=1 seek=100000000 conv=notrunc 2>/dev/null &&
	img-convert -O raw src.qcow2 exists.raw &&
	cmp expect.raw exists.raw
'

test_expect_success 'a missing source fails without creating the destination' '
	open_fails img-convert nope.qcow2 &&
	grep "^img-convert: cannot open .nope.qcow2.: " of.err &&
	! test -e of.out
'

test_expect_success 'wrong usage exits 2' '
	test_expect_code 2 img-convert -O raw src.qcow2 &&
	test_expect_code 2 img-convert -O raw &&
	test_expect_code 2 img-convert -O vmdk src.qcow2 x.vmdk &&
	test_expect_code 2 img-convert --no-such-option -O raw src.qcow2 x.raw
'

test_done
