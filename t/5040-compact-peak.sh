#!/bin/sh
# 5040-compact-peak.sh: img-compact reports the largest the file was during the run (file-size-peak), checked against the writes strace sees.
test_description='img-compact: peak file size'
. "$(dirname "$0")/lib.sh"

# peak IMG ARGS...: "before peak after" from img-compact's JSON on IMG.
peak() {
	peak_img_=$1
	shift
	img-compact --output=json "$@" "$peak_img_" >"$peak_img_.json" \
		2>"$peak_img_.err" &&
	no_sanitizer_report "$peak_img_.err" &&
	json_get "$peak_img_.json" file-size-before file-size-peak \
		file-size-after | sed 's/^[^=]*=//' | tr '\n' ' '
}

# flat.qed: one L2 table below 4 data clusters, zeros among them and below
# the table: clusters only move down, the file never grows.
# grow.qed: a second L2 table (past 2 GiB) near the end with a one-cluster
# gap below it: the table moves past the end first (4 clusters more), then
# down.
test_expect_success 'setup' '
	qemu-img create -q -f qed flat.qed 64M &&
	qio qed flat.qed "write -P 1 0 256k" "write -P 2 1M 256k" \
		"write -P 0 64k 64k" "write -P 0 1088k 64k" &&
	cp flat.qed flat.orig &&
	qemu-img create -q -f qed grow.qed 4G &&
	qio qed grow.qed "write -P 1 0 192k" "write -P 2 2G 64k" \
		"write -P 0 128k 64k" "write -P 0 2G 64k" &&
	cp grow.qed grow.orig
'

test_expect_success 'dry run: the peak is the size before' '
	cp grow.orig dry.qed &&
	set -- $(peak dry.qed -n) &&
	test "$2" = "$1" &&
	cmp grow.orig dry.qed
'

test_expect_success 'no growth: peak = before, no peak line in the text' '
	cp flat.orig f1.qed &&
	set -- $(peak f1.qed) &&
	test "$1" -gt "$3" &&
	test "$2" = "$1" &&
	cp flat.orig f2.qed &&
	img-compact f2.qed >f2.out &&
	! grep -F "Peak" f2.out &&
	qemu-img compare -q flat.orig f1.qed &&
	test_expect_code 0 qemu-img check f1.qed >/dev/null
'

test_expect_success 'a table moved past the end: the peak says by how much' '
	cp grow.orig g1.qed &&
	before=$(stat -c %s g1.qed) &&
	set -- $(peak g1.qed) &&
	test "$1" = "$before" &&
	test "$2" -gt "$1" &&
	test "$2" -le $((before + 4 * 65536)) &&
	test "$(stat -c %s g1.qed)" = "$3" &&
	qemu-img compare -q grow.orig g1.qed &&
	cp grow.orig g2.qed &&
	img-compact g2.qed >g2.out &&
	grep -E "^Peak file size: .* \(\+$(($2 - $1)) bytes during the run\)$" g2.out
'

# The highest end offset of the writes, in-kernel copies and truncates
# strace logs.
strace_peak() {
	perl -ne '
		$m = $1 + $2 if /pwrite64\(\d+, .*, (\d+), (\d+)\) = \d+/ && $1 + $2 > $m;
		$m = $1 if /ftruncate\(\d+, (\d+)\) = 0/ && $1 > $m;
		$m = $1 + $2 if /copy_file_range\(\d+, \[\d+\], \d+, \[(\d+)\], \d+, \d+\) = (\d+)/ && $1 + $2 > $m;
		$m = $1 + $2 if /FICLONERANGE, \{.*src_length=(\d+), dest_offset=(\d+)\}\) = 0/ && $1 + $2 > $m;
		END { print $m + 0, "\n" }' "$1"
}

# (LeakSanitizer cannot run under ptrace: leak checks off for this run.)
test_expect_success 'the peak is what the system calls did' '
	cp grow.orig s.qed &&
	before=$(stat -c %s s.qed) &&
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -o s.trace -e trace=pwrite64,ftruncate,copy_file_range,ioctl img-compact \
		--output=json s.qed >s.json &&
	json_get s.json file-size-peak >s.peak &&
	seen=$(strace_peak s.trace) &&
	test "$seen" -gt "$before" &&
	echo "file-size-peak=$seen" >s.want &&
	test_cmp s.want s.peak
'

test_done
