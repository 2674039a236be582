#!/bin/sh
# 3002-convert-errors.sh: img-convert refuses bad option mixes (exit 2) and impossible conversions (exit 1) with one-line messages, and a failed or interrupted run leaves no destination and no temporary file.
test_description='img-convert errors, refusals and interruptions'
. "$(dirname "$0")/lib.sh"

# leftovers NAME: the temporary files img-convert makes for a destination
# NAME (.NAME.XXXXXX) in the current directory.
leftovers() {
	ls -A | grep "^\.$1\.......$" || true
}

# fails_with CODE PATTERN ARGS...: img-convert ARGS exits CODE with one
# line on stderr, "img-convert: " then text matching PATTERN (grep -E),
# no sanitizer report; DST (the last argument) is neither created nor
# changed, and its directory holds the same files as before (no temporary
# file left). $fault, if set, is an IMG_FAULT_WRITE for the run.
fault=
fails_with() {
	fw_code_=$1
	fw_pat_=$2
	shift 2
	for fw_dst_; do :; done
	if test -d "$fw_dst_"; then
		rm -rf fw.before && mkdir fw.before || return 1
	elif test -e "$fw_dst_"; then
		cp -p "$fw_dst_" fw.before || return 1
	else
		rm -rf fw.before
	fi
	fw_dir_=$(dirname "$fw_dst_")
	dir_list "$fw_dir_" >fw.ls.before
	test_expect_code "$fw_code_" env ${fault:+IMG_FAULT_WRITE=$fault} \
		img-convert "$@" 2>err
	fw_rc_=$?
	cat err >&2
	test $fw_rc_ = 0 &&
	no_sanitizer_report err &&
	test_line_count = 1 err &&
	grep -E "^img-convert: .*$fw_pat_" err >/dev/null &&
	if test -d fw.before; then
		test -d "$fw_dst_"
	elif test -e fw.before; then
		cmp fw.before "$fw_dst_"
	else
		! test -e "$fw_dst_"
	fi &&
	test -z "$(leftovers "${fw_dst_##*/}")" &&
	dir_list "$fw_dir_" >fw.ls.after &&
	test_cmp fw.ls.before fw.ls.after
}

# dir_list DIR: the files in DIR but our own bookkeeping (none if DIR is
# missing).
dir_list() {
	test -d "$1" || return 0
	ls -A "$1" | grep -v "^err$" | grep -v "^fw\." || true
}

test_expect_success 'setup: a source, a base, and an old destination' '
	qemu-img create -q -f qcow2 base.qcow2 8M &&
	qio qcow2 base.qcow2 "write -P 0x11 0 8M" &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src.qcow2 8M &&
	qio qcow2 src.qcow2 "write -P 0x21 0 64k" "write -P 0x22 1M 1M" \
		"write -z 3M 64k" "write -P 0x23 5M 2M" "write -P 0x24 $((8 * 1024 * 1024 - 512)) 512" &&
	qemu-img convert -O raw src.qcow2 src.expect &&
	cp src.qcow2 src.orig &&
	printf "the old destination\n" >old
'

# usage errors: exit 2
test_expect_success '--target-is-zero without -n' '
	fails_with 2 "--target-is-zero needs -n" --target-is-zero -O qed src.qcow2 d.qed
'

test_expect_success '-o with -n' '
	cp old d.qed &&
	fails_with 2 "-o cannot be used with -n" -n -o cluster_size=4k -O qed src.qcow2 d.qed
'

test_expect_success '-B with -n' '
	cp old d.qed &&
	fails_with 2 "-B cannot be used with -n" -n -B base.qcow2 -O qed src.qcow2 d.qed
'

test_expect_success '-F without -B' '
	fails_with 2 "-F needs a backing file \(-B\)" -F qcow2 -O qed src.qcow2 d.qed &&
	fails_with 2 "-F needs a backing file \(-B\)" -F raw src.qcow2 d.raw
'

test_expect_success 'unknown -O' '
	fails_with 2 "unknown output format .vmdk." -O vmdk src.qcow2 d.vmdk &&
	fails_with 2 "unknown output format .QED." -O QED src.qcow2 d.qed &&
	fails_with 2 "unknown output format .." -O "" src.qcow2 d.qed
'

test_expect_success 'unknown -o name' '
	fails_with 2 "nosuch" -O qed -o nosuch=1 src.qcow2 d.qed &&
	fails_with 2 "compression_type" -O qed -o compression_type=zlib src.qcow2 d.qed
'

# img-convert -O raw never parses -o: unknown names and bad values pass silently.
test_expect_success 'unknown -o name or bad value with -O raw' '
	fails_with 2 "cluster_size" -O raw -o cluster_size=4k src.qcow2 d.raw &&
	fails_with 2 "preallocation.*bogus" -O raw -o preallocation=bogus src.qcow2 d.raw
'

test_expect_success 'bad -o value: not a size, not a choice' '
	fails_with 2 "cluster_size.*abc" -O qed -o cluster_size=abc src.qcow2 d.qed &&
	fails_with 2 "preallocation.*bogus" -O qed -o preallocation=bogus src.qcow2 d.qed
'

test_expect_success 'a -o value the format cannot take: exit 1, as img-create' '
	fails_with 1 "cluster size 3000" -O qed -o cluster_size=3000 src.qcow2 d.qed &&
	fails_with 1 "table size 3" -O qed -o table_size=3 src.qcow2 d.qed
'

test_expect_success 'bad -S' '
	for s in 1000 abc 32M -1 1k5; do
		fails_with 2 "invalid sparse size .$s." -O qed -S $s src.qcow2 d.qed ||
		return 1
	done
'

test_expect_success 'usage errors leave an existing destination alone' '
	cp old d.qed &&
	fails_with 2 "--target-is-zero needs -n" --target-is-zero -O qed src.qcow2 d.qed &&
	fails_with 2 "unknown output format" -O vmdk src.qcow2 d.qed &&
	fails_with 2 "invalid sparse size" -O qed -S 3 src.qcow2 d.qed
'

# format refusals: exit 1
test_expect_success '-c with -O qed or raw' '
	fails_with 1 "qed format does not support compression \(-c\)" -c -O qed src.qcow2 d.qed &&
	fails_with 1 "raw format does not support compression \(-c\)" -c -O raw src.qcow2 d.raw &&
	fails_with 1 "raw format does not support compression" -c src.qcow2 d.raw
'

test_expect_success '-B with -O raw' '
	fails_with 1 "raw images have no backing file \(-B\)" -B base.qcow2 -O raw src.qcow2 d.raw &&
	fails_with 1 "raw images have no backing file" -B base.qcow2 src.qcow2 d.raw
'

test_expect_success '-B naming a missing file' '
	fails_with 1 "cannot open backing file .nope.qcow2." -O qed -B nope.qcow2 src.qcow2 d.qed
'

# unwritable destinations (we may be root: permissions prove nothing)
test_expect_success 'destination in a missing directory: exit 1 naming it' '
	for f in qed raw; do
		fails_with 1 "cannot create .nodir/d.$f.: No such file or directory" \
			-O $f src.qcow2 nodir/d.$f || return 1
	done &&
	! test -e nodir
'

test_expect_success 'destination is a directory: exit 1 naming it, no temporary file' '
	mkdir adir &&
	for f in qed raw; do
		fails_with 1 "cannot write .adir.: Is a directory" -O $f src.qcow2 adir &&
		test -z "$(ls -A adir)" || return 1
	done &&
	fails_with 1 "cannot create .adir/.: Is a directory" -O qed src.qcow2 adir/
'

# -n refusals
test_expect_success '-n with a missing target' '
	for f in qed raw; do
		fails_with 1 "cannot open .missing.$f.: No such file or directory" \
			-n -O $f src.qcow2 missing.$f || return 1
	done
'

test_expect_success '-n into a target smaller than the source: refused, untouched' '
	qemu-img create -q -f qed small.qed 4M &&
	qio qed small.qed "write -P 0x55 0 4M" &&
	fails_with 1 "small.qed.*smaller than the source" -n -O qed src.qcow2 small.qed &&
	truncate -s 4M small.raw &&
	fails_with 1 "smaller than the source" -n -O raw src.qcow2 small.raw
'

test_expect_success '-n onto the source itself or its backing file: refused' '
	fails_with 1 ".src.qcow2. is the source" -n -O qcow2 src.qcow2 src.qcow2 &&
	fails_with 1 ".src.qcow2. is the source" -n -O qed src.qcow2 src.qcow2 &&
	fails_with 1 ".src.qcow2. is the source" -n -O raw src.qcow2 src.qcow2 &&
	fails_with 1 ".base.qcow2. is a backing file" -n -O qcow2 src.qcow2 base.qcow2 &&
	ln src.qcow2 hardlink.qcow2 &&
	fails_with 1 "is the source" -n -O qcow2 src.qcow2 hardlink.qcow2 &&
	cmp src.orig src.qcow2
'

# failures and interruptions while writing
test_expect_success 'setup: a source whose conversion takes many writes' '
	qemu-img create -q -f qcow2 -o cluster_size=4k big.qcow2 32M &&
	qio qcow2 big.qcow2 "write -P 0x31 0 64k" "write -P 0x32 4M 1M" \
		"write -z 6M 64k" "write -P 0x33 8M 3M" "write -P 0x34 20M 64k" \
		"write -P 0x35 31M 1M" &&
	qemu-img convert -O raw big.qcow2 big.expect
'

# count_writes FMT: how many writes img-convert -O FMT big.qcow2 makes
# (the first N at which a fault does not hit is one past them), into
# writes.FMT; fails at once if the conversion does not work at all.
count_writes() {
	rm -f probe.$1 &&
	img-convert -O $1 big.qcow2 probe.$1 &&
	qemu-img compare big.qcow2 probe.$1 &&
	cw_n_=1 &&
	until env IMG_FAULT_WRITE=$cw_n_ img-convert -O $1 big.qcow2 probe.$1 2>/dev/null; do
		test $cw_n_ -lt 2000 &&
		cw_n_=$((cw_n_ + 1)) || return 1
	done &&
	qemu-img compare big.qcow2 probe.$1 &&
	test $cw_n_ -ge 4 &&
	echo $((cw_n_ - 1)) >writes.$1
}

# some_writes FMT: write numbers to hit: the first few, some in the
# middle, the last few.
some_writes() {
	sw_n_=$(cat writes.$1)
	{
		seq 1 4
		seq $((sw_n_ / 4)) $((sw_n_ / 4 + 1))
		seq $((sw_n_ / 2)) $((sw_n_ / 2 + 1))
		seq $((sw_n_ - 3)) $sw_n_
	} | awk '$1 >= 1 && !seen[$1]++' | sort -n
}

for f in qed qcow2; do
	test_expect_success "-O $f: count the writes of a conversion" "
		count_writes $f
	"

	test_expect_success "-O $f: a write failing: exit 1 naming DST, no DST, no temporary file" "
		test -s writes.$f &&
		for n in \$(some_writes $f); do
			rm -f d.$f &&
			fault=\$n &&
			fails_with 1 \"cannot .* .d.$f.: .*Input/output error\" \
				-O $f big.qcow2 d.$f ||
			{ echo >&2 \"at write \$n\"; fault=; return 1; }
		done &&
		fault=
	"

	test_expect_success "-O $f: a write failing: an existing DST is untouched" "
		test -s writes.$f &&
		for n in \$(some_writes $f); do
			cp old d.$f &&
			fault=\$n &&
			fails_with 1 \"d.$f\" -O $f big.qcow2 d.$f ||
			{ echo >&2 \"at write \$n\"; fault=; return 1; }
		done &&
		fault=
	"

	test_expect_success "-O $f: SIGTERM at a write: no DST, no temporary file" "
		test -s writes.$f &&
		for n in \$(some_writes $f); do
			rm -f d.$f &&
			test_expect_code 143 env IMG_FAULT_WRITE=\$n IMG_FAULT_MODE=term \
				img-convert -O $f big.qcow2 d.$f &&
			! test -e d.$f &&
			test -z \"\$(leftovers d.$f)\" ||
			{ echo >&2 \"at write \$n\"; return 1; }
		done
	"

	test_expect_success "-O $f: SIGKILL at a write: no DST, an old DST intact" "
		test -s writes.$f &&
		for n in \$(some_writes $f); do
			rm -f d.$f &&
			test_expect_code 137 env IMG_FAULT_WRITE=\$n IMG_FAULT_MODE=kill \
				img-convert -O $f big.qcow2 d.$f &&
			! test -e d.$f &&
			cp old d.$f &&
			test_expect_code 137 env IMG_FAULT_WRITE=\$n IMG_FAULT_MODE=kill \
				img-convert -O $f big.qcow2 d.$f &&
			cmp old d.$f ||
			{ echo >&2 \"at write \$n\"; return 1; }
		done &&
		# the next run is unharmed by what the kills left
		img-convert -O $f big.qcow2 d.$f &&
		qemu-img check -q -f $f d.$f &&
		qemu-img compare big.qcow2 d.$f
	"

	# timing decides whether the signal comes mid-run (-S 0 over 64 MiB
	# takes a while) or after the end; either way: all or nothing
	test_expect_success "-O $f: a real SIGTERM or SIGINT: all or nothing" "
		truncate -s 64M slow.raw &&
		rm -f .d.$f.* &&
		for sig in TERM INT; do
			rm -f d.$f &&
			{ img-convert -S 0 -O $f slow.raw d.$f & } &&
			pid=\$! &&
			sleep 0.02 &&
			kill -s \$sig \$pid 2>/dev/null
			wait \$pid
			rc=\$? &&
			echo \"SIG\$sig: exit \$rc\" &&
			case \$rc in
			0) qemu-img compare -f raw -F $f slow.raw d.$f ;;
			130|143) ! test -e d.$f ;;
			*) false ;;
			esac &&
			test -z \"\$(leftovers d.$f)\" || return 1
		done &&
		rm -f d.$f
	"
done

test_expect_success 'after all that, the sources are unchanged and converting works' '
	cmp src.orig src.qcow2 &&
	img-convert -O qed src.qcow2 final.qed &&
	qemu-img check -q -f qed final.qed &&
	qemu-img compare src.qcow2 final.qed
'

test_done
