#!/bin/sh
# 8030-addcow-damaged.sh: damaged add-cow headers, names and files: one-line errors from img-info, img-map and img-convert, never a crash.
test_description='damaged add-cow files'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-addcow.sh"

# bad AC TEXT key=value...: AC built so, refused by all three commands
# with one line holding TEXT.
bad() {
	bad_ac_=$1
	bad_text_=$2
	shift 2
	python3 mkac.py "$bad_ac_" map=0000000000000000 "$@" &&
	all_fail "$bad_ac_" &&
	grep -F "$bad_text_" of.err >/dev/null ||
	{ echo >&2 "no '$bad_text_' in:"; cat >&2 of.err; return 1; }
	test_must_fail img-check "$bad_ac_" >/dev/null 2>&1
}

SQ="'"
test_expect_success 'setup' '
	truncate -s 1M disk.raw &&
	truncate -s 1M base.raw &&
	python3 mkac.py good.ac map=0000000000000000 backing=base.raw bfmt=raw &&
	img-info good.ac >/dev/null
'

test_expect_success 'names pointing back at the add-cow file or at each other' '
	bad self.ac "names itself as its image file" image=self.ac &&
	bad selfb.ac "names itself as its backing file" backing=selfb.ac &&
	bad same.ac "as its backing file too" backing=disk.raw bfmt=raw
'

test_expect_success 'names outside the header, a NUL in a name' '
	bad out1.ac "image file name outside the header" io=7990 &&
	bad out2.ac "backing file name outside the header" backing=base.raw bo=4093 &&
	bad out3.ac "image file name outside the header" io=79 &&
	bad out4.ac "file name longer than 1023 bytes" is=5000 &&
	bad nul.ac "holds a NUL byte" image=disk.raw is=12
'

test_expect_success 'a bitmap shorter than the disk needs' '
	bad short.ac "COW bitmap too short" bmlen=1
'

test_expect_success 'unknown feature bits, cluster_bits 8 and 22' '
	bad feat.ac "unsupported add-cow features 0x4" feat=4 &&
	bad bits8.ac "cluster bits out of range" bits=8 &&
	bad bits22.ac "cluster bits out of range" bits=22
'

test_expect_success 'header_size 79 or past the end of the file' '
	bad hs79.ac "header size out of range" hs=79 &&
	python3 mkac.py hseof.ac map=0000000000000000 &&
	python3 -c "
import struct
f = open(\"hseof.ac\", \"r+b\"); f.seek(44); f.write(struct.pack(\"<I\", 8192))" &&
	all_fail hseof.ac &&
	grep -F "header size beyond end of file" of.err
'

test_expect_success 'image formats qcow2 and bogus' '
	bad q.ac "image file format ${SQ}qcow2${SQ} is not supported" ifmt=qcow2 &&
	bad bogus.ac "unknown image file format ${SQ}bogus${SQ}" ifmt=bogus
'

test_expect_success 'missing image file, missing backing file' '
	bad noimg.ac "cannot open image file" image=gone.raw &&
	python3 mkac.py noback.ac map=0000000000000000 backing=gone.qcow2 bfmt=qcow2 &&
	open_fails img-convert noback.ac &&
	grep -F "gone.qcow2" of.err
'

test_expect_success 'files shorter than a header' '
	head -c 79 good.ac >trunc.ac &&
	all_fail trunc.ac &&
	grep -F "file too short for an add-cow header (79 bytes)" of.err &&
	head -c 8 good.ac >magic.ac &&
	all_fail magic.ac
'

test_done
