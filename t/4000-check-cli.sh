#!/bin/sh
# 4000-check-cli.sh: img-check's command line: options, output forms, exit codes, raw images, read-only without -r.
test_description='img-check command line'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup' '
	truncate -s 10M a.raw &&
	printf "data" | dd of=a.raw bs=1 seek=4096 conv=notrunc 2>/dev/null &&
	qemu-img create -q -f qcow2 a.qcow2 16M &&
	qio qcow2 a.qcow2 "write -P 0x5a 0 128k" &&
	qemu-img create -q -f qed a.qed 16M &&
	qio qed a.qed "write -P 0x5a 0 128k"
'

test_expect_success 'a raw image: exit 63, the format has no checks (as qemu-img)' '
	test_expect_code 63 img-check a.raw >out 2>err &&
	echo "img-check: cannot check '"'"'a.raw'"'"': the raw format does not support checks" >expect &&
	test_cmp expect err &&
	test ! -s out &&
	test_expect_code 63 qemu-img check -f raw a.raw >/dev/null 2>&1
'

test_expect_success 'an empty file, -r, JSON, -f raw: exit 63 all the same, nothing written' '
	: >empty &&
	cp a.raw a.before &&
	for args in empty "-r leaks a.raw" "-r all a.raw" "--output=json a.raw" "-q empty" "-f raw a.qcow2"; do
		test_expect_code 63 img-check $args >out 2>err &&
		test ! -s out &&
		test_line_count = 1 err &&
		grep "^img-check: cannot check .*: the raw format does not support checks\$" err ||
		return 1
	done &&
	cmp a.raw a.before &&
	test ! -s empty
'

test_expect_success 'a clean qcow2: the same verdict and counts as qemu-img' '
	img-check --output=json a.qcow2 >ours.json &&
	qemu-img check --output=json a.qcow2 >qemu.json &&
	keys="check-errors leaks corruptions total-clusters allocated-clusters fragmented-clusters compressed-clusters image-end-offset format" &&
	json_get ours.json $keys >ours &&
	json_get qemu.json $keys >theirs &&
	test_cmp theirs ours
'

test_expect_success '-q prints nothing on stdout and keeps the exit status' '
	img-check -q a.qed >out &&
	test ! -s out &&
	truncate -s +64k a.qed &&
	test_expect_code 3 img-check -q a.qed >out 2>/dev/null &&
	test ! -s out
'

test_expect_success 'without -r a leaky image is not written (mtime and bytes unchanged)' '
	cp a.qed before.qed &&
	touch -d "2001-01-01" a.qed &&
	test_expect_code 3 img-check a.qed >/dev/null 2>&1 &&
	test "$(stat -c %Y a.qed)" = "$(date -d 2001-01-01 +%s)" &&
	cmp a.qed before.qed
'

test_expect_success 'a missing image: exit 1, one line naming it' '
	test_expect_code 1 img-check nosuch.qcow2 2>err &&
	test_line_count = 1 err &&
	grep "^img-check: cannot open .nosuch.qcow2." err
'

test_expect_success 'bad -r value, bad --output, no image, two images: exit 2' '
	test_expect_code 2 img-check -r some a.qcow2 2>err &&
	grep "invalid -r" err &&
	test_expect_code 2 img-check --output=xml a.qcow2 &&
	test_expect_code 2 img-check &&
	test_expect_code 2 img-check a.qcow2 a.raw
'

test_done
