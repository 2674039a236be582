#!/bin/sh
# 3003-convert-protect.sh: img-convert and img-create refuse to write over a file the source (or the new image) depends on: the image itself, its backing chain, external data files, the -B chain, through symbolic links, for new outputs and -n alike.
test_description='protected files: no output replaces what the conversion reads'
. "$(dirname "$0")/lib.sh"

# refused WHAT ARGS...: img-convert ARGS exits 1 with exactly the line
# "img-convert: WHAT"; every file here is byte-identical afterwards and no
# file appeared or vanished (no temporary file either).
refused() {
	rf_want_=$1
	shift
	rf_state_ >rf.before &&
	test_expect_code 1 img-convert "$@" 2>rf.err &&
	echo "img-convert: $rf_want_" >rf.expect &&
	test_cmp rf.expect rf.err &&
	rf_state_ >rf.after &&
	test_cmp rf.before rf.after
}

# rf_state_: every name here (links as links) and the checksum of every
# regular file, but our own bookkeeping.
rf_state_() {
	ls -A | grep -v "^rf\." | while read -r f; do
		if test -h "$f"; then echo "link $f"; else echo "name $f"; fi
	done &&
	find . -maxdepth 1 -type f ! -name "rf.*" -exec cksum {} + | sort
}

test_expect_success 'setup: base.raw <- mid.qcow2 <- child.qcow2, a data-file image' '
	qemu-img create -q -f raw base.raw 4M &&
	qio raw base.raw "write -P 0x11 0 1M" &&
	qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 &&
	qio qcow2 mid.qcow2 "write -P 0x22 1M 1M" &&
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 child.qcow2 &&
	qio qcow2 child.qcow2 "write -P 0x33 2M 64k" &&
	qemu-img create -q -f qcow2 -o data_file=ext.raw withdata.qcow2 4M &&
	qio qcow2 withdata.qcow2 "write -P 0x44 0 64k" &&
	qemu-img create -q -f qcow2 other.qcow2 4M &&
	qemu-img convert -O raw child.qcow2 child.expect
'

for f in raw qcow2 qed qcow; do
	test_expect_success "-O $f: the backing file of the source is refused, new or -n" "
		refused \"'base.raw' is a backing file of the source 'child.qcow2': refusing to overwrite it\" \
			-O $f child.qcow2 base.raw &&
		refused \"'base.raw' is a backing file of the source 'child.qcow2': refusing to overwrite it\" \
			-n -O $f child.qcow2 base.raw &&
		refused \"'mid.qcow2' is a backing file of the source 'child.qcow2': refusing to overwrite it\" \
			-O $f child.qcow2 mid.qcow2
	"

	test_expect_success "-O $f: the source itself is refused" "
		refused \"'child.qcow2' is the source: refusing to overwrite it\" \
			-O $f child.qcow2 child.qcow2 &&
		refused \"'child.qcow2' is the source: refusing to overwrite it\" \
			-n -O $f child.qcow2 child.qcow2
	"

	test_expect_success "-O $f: the external data file of the source is refused" "
		refused \"'ext.raw' is the external data file of the source 'withdata.qcow2': refusing to overwrite it\" \
			-O $f withdata.qcow2 ext.raw &&
		refused \"'ext.raw' is the external data file of the source 'withdata.qcow2': refusing to overwrite it\" \
			-n -O $f withdata.qcow2 ext.raw
	"
done

test_expect_success 'a data file of a backing file is protected too' '
	qemu-img create -q -f qcow2 -b withdata.qcow2 -F qcow2 ontop.qcow2 &&
	refused "'"'ext.raw'"' is the external data file of a backing file of the source '"'ontop.qcow2'"': refusing to overwrite it" \
		-O qcow2 ontop.qcow2 ext.raw
'

test_expect_success 'a symbolic link or a hard link to a protected file is refused' '
	ln -s base.raw link.raw &&
	ln -s link.raw link2.raw &&
	ln base.raw hard.raw &&
	refused "'"'link.raw'"' is a backing file of the source '"'child.qcow2'"': refusing to overwrite it" \
		-O raw child.qcow2 link.raw &&
	refused "'"'link2.raw'"' is a backing file of the source '"'child.qcow2'"': refusing to overwrite it" \
		-O qcow2 child.qcow2 link2.raw &&
	refused "'"'hard.raw'"' is a backing file of the source '"'child.qcow2'"': refusing to overwrite it" \
		-n -O raw child.qcow2 hard.raw &&
	test -h link.raw && test -h link2.raw
'

test_expect_success '-B: every file of the new backing chain is refused' '
	refused "'"'other.qcow2'"' is the new backing file (-B): refusing to overwrite it" \
		-O qcow2 -B other.qcow2 -F qcow2 child.qcow2 other.qcow2 &&
	cp base.raw base2.raw &&
	qemu-img create -q -f qcow2 -b base2.raw -F raw nb.qcow2 &&
	refused "'"'base2.raw'"' is a backing file of the new backing file '"'nb.qcow2'"' (-B): refusing to overwrite it" \
		-O qcow2 -B nb.qcow2 -F qcow2 child.qcow2 base2.raw &&
	refused "'"'ext.raw'"' is the external data file of the new backing file '"'withdata.qcow2'"' (-B): refusing to overwrite it" \
		-O qed -B withdata.qcow2 -F qcow2 other.qcow2 ext.raw
'

test_expect_success 'standard output open on a protected file is refused' '
	cp base.raw base.before &&
	test_expect_code 1 img-convert -O raw child.qcow2 - >>base.raw 2>err &&
	echo "img-convert: '"'-'"' is a backing file of the source '"'child.qcow2'"': refusing to overwrite it" >expect &&
	test_cmp expect err &&
	cmp base.before base.raw
'

test_expect_success 'the files are intact and an unprotected output still works' '
	qemu-img compare child.expect child.qcow2 &&
	img-convert -O qcow2 child.qcow2 out.qcow2 &&
	qemu-img compare child.expect out.qcow2 &&
	img-convert -n -O qcow2 child.qcow2 out.qcow2 &&
	qemu-img compare child.expect out.qcow2
'

# img-create: an image must not replace its own backing file
test_expect_success 'img-create: its own backing file is refused' '
	qemu-img create -q -f qcow2 b.qcow2 1M &&
	echo "img-create: cannot create '"'b.qcow2'"': it is the new image'"'"'s own backing file" >expect &&
	test_expect_code 1 img-create -f qcow2 -b b.qcow2 -F qcow2 b.qcow2 2>err &&
	test_cmp expect err &&
	test_expect_code 1 img-create -u -f qcow2 -b b.qcow2 -F qcow2 b.qcow2 1M 2>err &&
	test_cmp expect err &&
	qemu-img check -q b.qcow2 &&
	test "$(qemu-img info b.qcow2 | grep -c "backing file")" = 0
'

test_expect_success 'img-create: a file deeper in the backing chain is refused' '
	qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 c.qcow2 &&
	cp b.qcow2 b.before &&
	test_expect_code 1 img-create -f qcow2 -b c.qcow2 -F qcow2 b.qcow2 2>err &&
	echo "img-create: cannot create '"'b.qcow2'"': it is a backing file of the new image'"'"'s backing file '"'c.qcow2'"'" >expect &&
	test_cmp expect err &&
	cmp b.before b.qcow2
'

test_done
