# lib-faults.sh: images for the fault tests t/912N-faults-*.sh, sourced after lib.sh.

size_of() {
	stat -c %s "$1"
}

# full RAW IMG FMT: IMG of format FMT holds RAW's data, every cluster
# written (zeros stored as data, for compaction to find). The first 64 KiB
# are written first, so that a QED L2 table lies after them.
full() {
	qemu-img create -q -f "$3" "$2" $(size_of "$1") &&
	head -c 65536 "$1" >first.tmp &&
	qio "$3" "$2" "write -s first.tmp 0 64k" \
		"write -s $1 0 $(size_of "$1")"
}

# leak IMG: the data cluster of guest cluster 0 is no longer referenced
# (its L2 entry cleared: a leak in qcow2, QED and qcow alike). The L1
# table's offset is at byte 40 of every header; qcow2's entries carry
# flags in the top bits, hence the low 32 bits only (small offsets).
leak() {
	case $2 in
	qed) lk_l2_=$(img-poke "$1" $(img-poke "$1" 40 read le64) read le64) &&
	     img-poke "$1" "$lk_l2_" le64 0 ;;
	*) lk_l1_=$(img-poke "$1" 44 read be32) &&
	   lk_l2_=$(($(img-poke "$1" $((lk_l1_ + 4)) read be32) & ~511)) &&
	   img-poke "$1" "$lk_l2_" be64 0 ;;
	esac
}

FORMATS='qcow2 qed qcow'

# fault_images: for each format F, a.F and b.F (the data of a.raw and
# b.raw), leak.F (a.F leaking one cluster) and leak.F.raw (what it reads);
# b.raw.img, a raw target.
fault_images() {
	zero_fill a.raw dd0d00dd0000d0dd000d00dd &&
	zero_fill b.raw 0dd0dd00dddd0d00d0dd0d00 &&
	for f in $FORMATS; do
		full a.raw a.$f $f &&
		full b.raw b.$f $f &&
		cp a.$f leak.$f &&
		leak leak.$f $f &&
		qemu-img convert -O raw leak.$f leak.$f.raw &&
		! cmp a.raw leak.$f.raw &&
		test_expect_code 3 img-check leak.$f >/dev/null || return 1
	done &&
	cp b.raw b.raw.img
}

