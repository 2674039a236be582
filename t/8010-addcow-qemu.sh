#!/bin/sh
# 8010-addcow-qemu.sh: add-cow pairs over qcow2/qed chains read as QEMU reads the qcow2 child with the same writes: img-convert -n into a pair, -B, chains, short backing files, relative names.
test_description='add-cow against qemu-img on the same writes'
. "$(dirname "$0")/lib.sh"

# WRITES: qemu-io commands over a 4 MiB disk: partial clusters, a zero
# range over backing data, a discard, a write past the base's data.
WRITES='write -P 0x21 4k 8k
write -z 1M 64k
write -P 0x22 2M 1k
write -P 0x23 2047k 2k
discard 3M 128k
write -P 0x24 3968k 128k'

# child_with_writes BASE FMT CHILD: a qcow2 CHILD of BASE with WRITES.
child_with_writes() {
	qemu-img create -q -f qcow2 -b "$1" -F "$2" "$3" &&
	printf "%s\n" "$WRITES" | while read -r cww_c_; do
		qio qcow2 "$3" "$cww_c_" || exit 1
	done
}

# reads_like AC REF: every byte of AC (exported by img-convert) is REF's
# as qemu-img reads it.
reads_like() {
	rm -f rl.raw &&
	img-convert -O raw "$1" rl.raw &&
	qemu-img compare -q -F raw "$2" rl.raw
}

# map_files AC: img-map's extents as "START LENGTH FILE" (decimal).
map_files() {
	img-map "$1" >map.out &&
	perl -ne 'next if $. == 1; @f = split; print hex($f[0]), " ", hex($f[1]), " $f[3]\n"' map.out
}

test_expect_success 'setup: a qcow2 base, its qcow2 child with the writes' '
	qemu-img create -q -f qcow2 base.qcow2 4M &&
	qio qcow2 base.qcow2 "write -P 0x11 0 3M" "write -z 256k 64k" &&
	child_with_writes base.qcow2 qcow2 child.qcow2 &&
	test_expect_code 0 qemu-img check child.qcow2 >/dev/null
'

test_expect_success 'img-convert -n into a pair over the base reads as the child' '
	img-create -q -f add-cow -o image_file=disk.raw -b base.qcow2 -F qcow2 p.ac &&
	reads_like p.ac base.qcow2 &&
	img-convert -n -O add-cow child.qcow2 p.ac &&
	reads_like p.ac child.qcow2 &&
	test_expect_code 0 img-check p.ac &&
	qemu-img compare -q -F raw child.qcow2 disk.raw
'

test_expect_success 'the same writes into a pair from a second source' '
	qemu-img convert -O raw child.qcow2 child.raw &&
	img-create -q -f add-cow -o image_file=disk2.raw -b base.qcow2 -F qcow2 p2.ac &&
	img-convert -n -O add-cow -f raw child.raw p2.ac &&
	reads_like p2.ac child.qcow2
'

test_expect_success '-B: clusters equal to the backing stay clear, zeros read zeros' '
	img-convert -O add-cow -o image_file=b.raw -B base.qcow2 -F qcow2 \
		child.qcow2 b.ac &&
	reads_like b.ac child.qcow2 &&
	img-info b.ac | grep "^backing file: base.qcow2$" &&
	map_files b.ac >got &&
	cat >want <<-\EOT &&
	0 65536 b.raw
	65536 196608 base.qcow2
	327680 720896 base.qcow2
	1048576 65536 b.raw
	1114112 917504 base.qcow2
	2031616 131072 b.raw
	2162688 983040 base.qcow2
	4063232 131072 b.raw
	EOT
	test_cmp want got &&
	qemu-io -f raw -c "read -P 0 1M 64k" b.raw | grep "^read 65536/65536" &&
	qemu-io -f qcow2 -c "read -P 0x11 1M 64k" base.qcow2 | grep "^read 65536/65536"
'

test_expect_success 'a chain of depth 2, qed under qcow2' '
	qemu-img create -q -f qed low.qed 4M &&
	qio qed low.qed "write -P 0x31 0 1M" "write -P 0x32 3M 512k" &&
	qemu-img create -q -f qcow2 -b low.qed -F qed mid.qcow2 &&
	qio qcow2 mid.qcow2 "write -P 0x33 512k 1M" "write -z 3M 64k" &&
	child_with_writes mid.qcow2 qcow2 top.qcow2 &&
	img-create -q -f add-cow -o image_file=chain.raw -b mid.qcow2 -F qcow2 c.ac &&
	reads_like c.ac mid.qcow2 &&
	img-convert -n -O add-cow top.qcow2 c.ac &&
	reads_like c.ac top.qcow2 &&
	img-convert -O add-cow -o image_file=cb.raw -B mid.qcow2 -F qcow2 top.qcow2 cb.ac &&
	reads_like cb.ac top.qcow2 &&
	map_files cb.ac >got &&
	grep -c " cb.raw$" got >n &&
	echo 5 >want &&
	test_cmp want n &&
	grep " low.qed$" got &&
	grep " mid.qcow2$" got
'

test_expect_success 'an add-cow over an add-cow' '
	img-create -q -f add-cow -o image_file=up.raw -b p.ac -F add-cow up.ac &&
	reads_like up.ac child.qcow2 &&
	qemu-io -f raw -c "write -P 0x41 64k 64k" up.raw >/dev/null &&
	python3 -c "
import sys
f = open(\"up.ac\", \"r+b\"); f.seek(4096); f.write(bytes([2])); f.close()" &&
	qemu-img create -q -f qcow2 -b child.qcow2 -F qcow2 upref.qcow2 &&
	qio qcow2 upref.qcow2 "write -P 0x41 64k 64k" &&
	reads_like up.ac upref.qcow2
'

test_expect_success 'image file larger than the backing file: zeros past its end' '
	qemu-img create -q -f qcow2 short.qcow2 1M &&
	qio qcow2 short.qcow2 "write -P 0x51 0 1M" &&
	img-create -q -f add-cow -o image_file=long.raw -b short.qcow2 -F qcow2 l.ac 3M &&
	img-info l.ac | grep "^virtual size: 3 MiB" &&
	qemu-img create -q -f qcow2 -b short.qcow2 -F qcow2 lref.qcow2 3M &&
	reads_like l.ac lref.qcow2 &&
	qio qcow2 lref.qcow2 "write -P 0x52 960k 128k" &&
	qemu-img convert -O raw lref.qcow2 lref.raw &&
	img-convert -n -O add-cow -f raw lref.raw l.ac &&
	reads_like l.ac lref.qcow2
'

test_expect_success 'relative names, read from another working directory' '
	mkdir -p sub/deep &&
	qemu-img create -q -f qcow2 sub/base.qcow2 1M &&
	qio qcow2 sub/base.qcow2 "write -P 0x61 0 512k" &&
	( cd sub && img-create -q -f add-cow -o image_file=deep/img.raw \
		-b base.qcow2 -F qcow2 deep.ac ) &&
	img-convert -O raw sub/deep.ac rel.raw &&
	qemu-img compare -q -F raw sub/base.qcow2 rel.raw &&
	( cd sub/deep && img-info ../deep.ac | grep "^    image file: deep/img.raw$" ) &&
	( cd / && img-map "$TRASH_DIRECTORY/sub/deep.ac" >"$TRASH_DIRECTORY/rel.map" ) &&
	grep " $TRASH_DIRECTORY/sub/base.qcow2$" rel.map &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 sub/relref.qcow2 &&
	qio qcow2 sub/relref.qcow2 "write -P 0x62 100k 200k" &&
	( cd / && img-convert -n -O add-cow "$TRASH_DIRECTORY/sub/relref.qcow2" "$TRASH_DIRECTORY/sub/deep.ac" ) &&
	qemu-img compare -q -F raw sub/relref.qcow2 sub/deep/img.raw &&
	reads_like sub/deep.ac sub/relref.qcow2
'

test_done
