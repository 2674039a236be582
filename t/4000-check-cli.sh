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

test_expect_success 'a raw image is clean: exit 0, the clean line' '
	img-check a.raw >out &&
	echo "No errors were found on the image." >expect &&
	test_cmp expect out
'

test_expect_success 'raw JSON: filename, format, check-errors and nothing else' '
	img-check --output=json a.raw >out.json &&
	json_get out.json filename format check-errors leaks corruptions >got &&
	cat >expect <<-\EOF &&
	filename=a.raw
	format=raw
	check-errors=0
	leaks=<absent>
	corruptions=<absent>
	EOF
	test_cmp expect got
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

test_expect_success '-f names the format: a qcow2 checked as raw is clean raw' '
	img-check --output=json -f raw a.qcow2 >out.json &&
	json_get out.json format >got &&
	echo format=raw >expect &&
	test_cmp expect got
'

test_done
