#!/bin/sh
# 3030-sparse-scaling.sh: every command costs what an image stores, not what it addresses: the same few MiB in 1 GiB, 1 TiB and 8 TiB images take as many system calls and as much memory to convert, check, map and compact.
test_description='sparse images: work in O(what is stored)'
. "$(dirname "$0")/lib.sh"

# Not timed (timings belong to make bench): the cost is counted as system
# calls (strace -f -c, threads included) and peak RSS (t/perf/maxrss.c).
# An 8 TiB image may cost a little more than a 1 GiB one (larger top
# tables: 128 KiB of qcow2 L1, for one), never in proportion to its size.
SIZES="1G 1T 8T"

# cost NAME CMD...: run CMD, noting its system calls in NAME.calls and its
# peak RSS (KiB) in NAME.rss; fails if CMD does.
cost() {
	cost_n_=$1
	shift
	# (LeakSanitizer cannot run under ptrace: off for these runs)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	./maxrss "$cost_n_.rss" strace -f -c -o "$cost_n_.strace" "$@" >/dev/null &&
	awk '$NF == "total" { print $4 }' "$cost_n_.strace" >"$cost_n_.calls" &&
	test -s "$cost_n_.calls"
}

# flat NAME [RSS_SLACK_MIB]: the 1 TiB and 8 TiB runs of NAME made at most
# twice the 1 GiB run's system calls plus 200, and (unless RSS_SLACK_MIB
# is "-") used at most RSS_SLACK_MIB (default 8) more memory.
flat() {
	base_c_=$(cat "$1-1G.calls") && base_r_=$(cat "$1-1G.rss") || return 1
	for s_ in 1T 8T; do
		c_=$(cat "$1-$s_.calls") && r_=$(cat "$1-$s_.rss") || return 1
		if test "$c_" -gt $((2 * base_c_ + 200)); then
			echo >&2 "$1: $c_ system calls at $s_, $base_c_ at 1G"
			return 1
		fi
		test "${2:-8}" = - && continue
		if test "$r_" -gt $((base_r_ + ${2:-8} * 1024)); then
			echo >&2 "$1: peak RSS $r_ KiB at $s_, $base_r_ KiB at 1G"
			return 1
		fi
	done
}

# same_as SRC OUT: qemu-img compare finds them identical. (It walks qcow
# v1 a cluster at a time, for hours at 8 TiB: a qcow OUT is compared as
# converted back to qcow2.)
same_as() {
	case $2 in
	*.qcow)
		rm -f back.qcow2 &&
		img-convert -O qcow2 "$2" back.qcow2 &&
		qemu-img compare -q "$1" back.qcow2
		;;
	*)
		qemu-img compare -q "$1" "$2"
		;;
	esac
}

test_expect_success 'setup: the same data in 1 GiB, 1 TiB and 8 TiB images' '
	command -v strace >/dev/null &&
	cc -O2 -o maxrss "$TEST_DIRECTORY/perf/maxrss.c" &&
	for s in $SIZES; do
		qemu-img create -q -f qcow2 s$s.qcow2 $s &&
		qio qcow2 s$s.qcow2 "write -P 0x11 0 1M" "write -P 0x22 256M 64k" \
			"write -z 512M 64k" "write -P 0x33 1023M 1M" &&
		qemu-img convert -O qed s$s.qcow2 s$s.qed || return 1
	done
'

for pair in qcow2:qed qed:qcow2 qcow2:qcow2 qcow2:qcow qcow2:raw; do
	from=${pair%:*}
	to=${pair#*:}
	# qcow v1 has one flat L1 table for the whole disk (32 MiB at 8 TiB,
	# as for qemu-img): its memory grows with the size, its calls do not.
	slack=8
	test $to = qcow && slack=-
	test_expect_success "img-convert $from -> $to" '
		for s in $SIZES; do
			rm -f o$s.$to &&
			cost conv-$from-$to-$s img-convert -O $to s$s.$from o$s.$to &&
			same_as s$s.$from o$s.$to || return 1
		done &&
		flat conv-$from-$to $slack
	'
done

test_expect_success 'img-convert -c qcow2 -> qcow2' '
	for s in $SIZES; do
		rm -f c$s.qcow2 &&
		cost convc-$s img-convert -c -O qcow2 s$s.qcow2 c$s.qcow2 &&
		qemu-img compare -q s$s.qcow2 c$s.qcow2 || return 1
	done &&
	flat convc
'

for fmt in qcow2 qed; do
	test_expect_success "img-check, img-map and img-compact on $fmt" '
		for s in $SIZES; do
			cost check-$fmt-$s img-check s$s.$fmt &&
			cost map-$fmt-$s img-map --output=json s$s.$fmt &&
			cp s$s.$fmt w$s.$fmt &&
			cost compact-$fmt-$s img-compact w$s.$fmt &&
			qemu-img check -q w$s.$fmt &&
			qemu-img compare -q s$s.$fmt w$s.$fmt || return 1
		done &&
		flat check-$fmt && flat map-$fmt && flat compact-$fmt
	'
done

test_done
