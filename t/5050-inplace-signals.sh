#!/bin/sh
# 5050-inplace-signals.sh: a signal stops img-compact and img-check -r at a safe point: the image opens, checks clean but for leaks (ours and qemu-img), reads the same, and a rerun finishes; SIGTERM sent at every write.
test_description='in-place commands and signals'
. "$(dirname "$0")/lib.sh"

# checks_clean IMG: img-check and qemu-img check find nothing but leaks
# (exit 0 or 3); qemu-img cannot check qcow v1 (63).
checks_clean() {
	img-check -q "$1" 2>/dev/null
	cc_ours_=$?
	qemu-img check -q "$1" >/dev/null 2>&1
	cc_qemu_=$?
	case "$cc_ours_:$cc_qemu_" in
	0:0|0:3|3:0|3:3|0:63|3:63) return 0 ;;
	esac
	echo >&2 "$1: img-check exits $cc_ours_, qemu-img check $cc_qemu_"
	return 1
}

# term_at_every_write WHAT REF CMD... IMG: CMD... IMG on a copy of IMG is
# sent SIGTERM at its 1st, 2nd, ... write until it runs to the end. Each
# time it dies by SIGTERM (143) after one line, "CMD: interrupted by
# SIGTERM: 'IMG' is consistent; WHAT", and the image checks clean but for
# leaks and reads as REF; a rerun exits 0 and leaves it clean. At least
# three interruptions.
term_at_every_write() {
	tw_what_=$1
	tw_ref_=$2
	shift 2
	for tw_img_; do :; done
	cp "$tw_img_" tw.orig || return 1
	tw_n_=1
	while :; do
		cp tw.orig "$tw_img_" &&
		( exec env IMG_FAULT_WRITE=$tw_n_ IMG_FAULT_MODE=term "$@" ) >/dev/null 2>tw.err
		tw_rc_=$?
		test $tw_rc_ = 0 && break
		test $tw_rc_ = 143 ||
			{ echo >&2 "write $tw_n_: exit $tw_rc_"; cat >&2 tw.err; return 1; }
		echo "$1: interrupted by SIGTERM: '$tw_img_' is consistent; $tw_what_" >tw.expect &&
		tail -n 1 tw.err >tw.last &&
		test_cmp tw.expect tw.last &&
		checks_clean "$tw_img_" &&
		qemu-img compare -q "$tw_ref_" "$tw_img_" &&
		"$@" >/dev/null &&
		test_expect_code 0 img-check "$tw_img_" >/dev/null &&
		qemu-img compare -q "$tw_ref_" "$tw_img_" ||
		{ echo >&2 "interrupted at write $tw_n_"; return 1; }
		tw_n_=$((tw_n_ + 1))
	done
	echo >&2 "$*: interrupted at each of $((tw_n_ - 1)) writes"
	test $tw_n_ -gt 3 &&
	test_expect_code 0 img-check "$tw_img_" >/dev/null &&
	qemu-img compare -q "$tw_ref_" "$tw_img_"
}

test_expect_success 'setup: images with zero clusters to compact' '
	zero_fill k.raw dd00d0000d00dd00d000000d 4096 &&
	qemu-img convert -f raw -O qcow2 -S 0 -o cluster_size=4k k.raw k.qcow2 &&
	qemu-img convert -f raw -O qed -S 0 -o cluster_size=4k k.raw k.qed &&
	qemu-img convert -f raw -O qcow -S 0 k.raw k.qcow
'

for f in qcow2 qed qcow; do
	test_expect_success "img-compact $f: SIGTERM at every write stops at a safe point" "
		cp k.$f c.$f &&
		term_at_every_write 'run img-compact again to finish' k.raw img-compact -q c.$f &&
		test \$(stat -c %s c.$f) -lt \$(stat -c %s k.$f)
	"
done

test_expect_success 'setup: QED images with leaks inside and at the end' '
	qemu-img create -q -f qed a.qed 8M &&
	qio qed a.qed "write -P 0x11 0 64k" "write -P 0x22 4M 128k" \
		"write -z 1M 64k" &&
	test $(img-poke a.qed $((0x60000)) read le64) = $((0x50000)) &&
	damage a.qed leaky.qed $((0x60000)) le64 0 &&
	head -c $((2 * 65536)) /dev/zero >>leaky.qed &&
	qemu-img convert -O raw leaky.qed leaky.raw &&
	test_expect_code 3 img-check -q leaky.qed
'

for mode in leaks all; do
	test_expect_success "img-check -r $mode: SIGTERM at every write stops at a safe point" "
		cp leaky.qed r.qed &&
		term_at_every_write 'run the repair again to finish' leaky.raw img-check -q -r $mode r.qed
	"
done

test_expect_success 'a signal before any write: the image is untouched' '
	cp k.qcow2 u.qcow2 &&
	( exec env IMG_FAULT_WRITE=1 IMG_FAULT_MODE=int img-compact -q u.qcow2 ) 2>err
	test $? = 130 &&
	echo "img-compact: interrupted by SIGINT: '"'u.qcow2'"' is consistent; run img-compact again to finish" >expect &&
	test_cmp expect err &&
	checks_clean u.qcow2 &&
	qemu-img compare -q k.raw u.qcow2
'

test_done
