#!/bin/sh
# 7000-demote-cli.sh: img-demote's command line: usage errors, exit codes, raw and qcow already the oldest form, --list for every format (human and JSON), image locks against a running qemu-io, no room on the file system.
test_description='img-demote command line'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-demote.sh"

test_expect_success 'setup' '
	qemu-img create -q -f raw r.raw 1M &&
	qemu-img create -q -f qcow q.qcow 1M &&
	qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M &&
	qemu-img create -q -f qcow2 v3.qcow2 1M &&
	qemu-io -c "write -P 1 0 64k" -c "write -z 64k 128k" v3.qcow2 >/dev/null &&
	qemu-img create -q -f qed e.qed 1M
'

test_expect_success 'usage errors exit 2 with one line' '
	test_expect_code 2 img-demote 2>err &&
	grep "^img-demote: missing IMAGE" err &&
	test_expect_code 2 img-demote --feature no-such v3.qcow2 2>err &&
	grep -F "img-demote: unknown feature '\''no-such'\''" err &&
	test_expect_code 2 img-demote --list --feature zstd v3.qcow2 2>err &&
	grep -F "img-demote: --list and --feature cannot be used together" err &&
	test_expect_code 2 img-demote -U v3.qcow2 2>err &&
	grep -F "img-demote: -U (--force-share) cannot be used without --list or --dry-run" err &&
	test_expect_code 2 img-demote --output=xml v3.qcow2 2>err &&
	test_expect_code 2 img-demote a b 2>err
'

test_expect_success 'raw, qcow and qcow2 v2: already the oldest form, exit 0, nothing written' '
	for i in r.raw q.qcow v2.qcow2; do
		cp $i before &&
		img-demote $i >out &&
		echo "'\''$i'\'' is a $(qemu-img info $i | sed -n "s/^file format: //p") image, already the oldest form: nothing to do." >want &&
		test_cmp want out &&
		img-demote --list $i >out &&
		test_cmp want out &&
		cmp before $i || return 1
	done &&
	img-demote --output=json q.qcow >q.json &&
	json_get q.json format oldest features >got &&
	printf "format=qcow\noldest=true\nfeatures=[]\n" >want &&
	test_cmp want got &&
	img-demote -f raw --list --output=json r.raw >r.json &&
	json_get r.json format oldest >got &&
	printf "format=raw\noldest=true\n" >want &&
	test_cmp want got
'

test_expect_success '--list of a fresh qcow2 v3 image, human and JSON' '
	demote_features v3.qcow2 >got &&
	cat >want <<-\EOT &&
	zero-clusters incompatible removable 2 65536 0
	feature-name-table compatible removable 0 65536 0
	version-3 incompatible removable 0 65536 0
	EOT
	test_cmp want got &&
	json_get v3.qcow2.list.json format oldest dry-run version-before version-after >got &&
	printf "format=qcow2\noldest=false\ndry-run=true\nversion-before=1.1\nversion-after=0.10\n" >want &&
	test_cmp want got &&
	img-demote --list v3.qcow2 >out &&
	head -n 1 out >got &&
	echo "FEATURE              CLASS         REMOVABLE    ENTRIES        BYTES       GROWTH" >want &&
	test_cmp want got &&
	grep "^zero-clusters  *incompatible  *yes  *2  *64 KiB  *0 B$" out
'

test_expect_success '--list of a QED image without features; -q prints nothing' '
	img-demote --list e.qed >out &&
	echo "No features to remove." >want &&
	test_cmp want out &&
	img-demote -q --list e.qed >out &&
	test_line_count = 0 out &&
	img-demote e.qed >out &&
	grep "^Nothing to do.$" out
'

test_expect_success '--feature of a feature the image does not use: nothing to do' '
	cp v3.qcow2 f.qcow2 &&
	img-demote --feature zstd f.qcow2 >out &&
	grep "^Nothing to do.$" out &&
	cmp v3.qcow2 f.qcow2
'

test_expect_success '-p and --progress=json report progress on stderr' '
	cp v3.qcow2 p.qcow2 &&
	img-demote -p p.qcow2 >/dev/null 2>err &&
	tr "\r" "\n" <err | grep -F "(100.00/100%)" &&
	cp v3.qcow2 p2.qcow2 &&
	img-demote --progress=json p2.qcow2 >/dev/null 2>err &&
	tail -n 1 err >last &&
	json_get last done total >got &&
	printf "done=1048576\ntotal=1048576\n" >want &&
	test_cmp want got &&
	cp v3.qcow2 p3.qcow2 &&
	img-demote -q -p p3.qcow2 >out 2>err &&
	test_line_count = 0 out &&
	test_line_count = 0 err
'

test -r /proc/locks && test_set_prereq LOCKS

# hold IMAGE: a qemu-io process keeps IMAGE open for writing (as a VM
# would) until unhold; returns once it holds its locks.
hold() {
	rm -f hold.fifo && mkfifo hold.fifo || return 1
	qemu-io "$1" <hold.fifo >hold.out 2>&1 &
	hold_pid_=$!
	exec 9>hold.fifo
	hold_n_=0
	until grep -q ":$(stat -c %i "$1") " /proc/locks; do
		kill -0 "$hold_pid_" 2>/dev/null || return 1
		hold_n_=$((hold_n_ + 1))
		test $hold_n_ -lt 600 || return 1
		sleep 0.05
	done
}
unhold() {
	exec 9>&-
	wait "$hold_pid_"
}

test_expect_success LOCKS 'a disk a running qemu-io holds is never touched' '
	cp v3.qcow2 held.qcow2 &&
	cp held.qcow2 held.orig &&
	hold held.qcow2 &&
	test_expect_code 1 img-demote held.qcow2 >out 2>err;
	code=$?
	test_expect_code 1 img-demote --list held.qcow2 2>err2;
	code2=$?
	img-demote -U --list held.qcow2 >listed;
	code3=$?
	unhold &&
	test $code = 0 && test $code2 = 0 && test $code3 = 0 &&
	echo "img-demote: cannot lock '\''held.qcow2'\'': in use by another process (is a VM running?)" >want &&
	test_cmp want err &&
	test_cmp want err2 &&
	grep "^zero-clusters" listed &&
	cmp held.orig held.qcow2 &&
	img-demote held.qcow2 >/dev/null &&
	demoted_clean held.qcow2 v3.qcow2
'

test_expect_success 'no room for the growth: refused before writing, one line' '
	test "$(id -u)" = 0 && command -v mkfs.ext4 >/dev/null || {
		echo >&2 "skipped: needs root and mkfs.ext4"; return 0; }
	qemu-img create -q -f qcow2 base.qcow2 8M &&
	qemu-io -c "write -P 7 0 8M" base.qcow2 >/dev/null &&
	qemu-img create -q -f qcow2 -b "$PWD/base.qcow2" -F qcow2 grow.qcow2 &&
	qemu-io -c "write -z 0 8M" grow.qcow2 >/dev/null &&
	demote_features grow.qcow2 >got &&
	grep "^zero-clusters incompatible removable 128 .* 8388608$" got &&
	truncate -s 8M small.fs && mkfs.ext4 -q small.fs && mkdir -p mnt &&
	mount -o loop small.fs mnt || { echo >&2 "skipped: cannot mount"; return 0; }
	cp grow.qcow2 mnt/ && cp mnt/grow.qcow2 grow.orig &&
	test_expect_code 1 img-demote mnt/grow.qcow2 2>err;
	code=$?
	cmp grow.orig mnt/grow.qcow2;
	same=$?
	umount mnt
	test $code = 0 && test $same = 0 &&
	grep "^img-demote: cannot demote '\''mnt/grow.qcow2'\'': '\''mnt/grow.qcow2'\'' would grow by 8388608 bytes, the file system has [0-9]* free$" err
'

test_done
