#!/bin/sh
# 8000-addcow-layout.sh: add-cow files built byte by byte from the documented layout read back as the bytes say (info, map, convert); img-create writes exactly those bytes.
test_description='add-cow layout, both ways'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-addcow.sh"

# fill FILE SIZE SEED: SIZE bytes, each 512-byte sector different.
fill() {
	python3 -c '
import sys
size, seed = int(sys.argv[2]), int(sys.argv[3])
out = bytearray()
for s in range((size + 511) // 512):
    out += bytes([(s * 7 + seed + j // 64) % 251 + 1 for j in range(512)])
open(sys.argv[1], "wb").write(out[:size])' "$@"
}

# reads_as AC REF: img-convert -O raw of AC equals REF byte for byte.
reads_as() {
	rm -f reads.raw &&
	img-convert -O raw "$1" reads.raw &&
	qemu-img compare -q -f raw -F raw "$2" reads.raw &&
	cmp "$2" reads.raw
}

# map_files AC: img-map's extents as "START LENGTH FILE" lines, merged.
map_files() {
	img-map "$1" >map.out &&
	perl -ne 'next if $. == 1; @f = split; print hex($f[0]), " ", hex($f[1]), " $f[3]\n"' map.out
}

# want_map BITS MAP SIZE IMAGE BACKING: the extents the bits say.
want_map() {
	python3 -c '
import sys
cs, m, size, img, back = 1 << int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = []
for i in range(0, size, cs):
    f = img if i // cs < len(m) and m[i // cs] == "1" else back
    ln = min(cs, size - i)
    if runs and runs[-1][2] == f:
        runs[-1][1] += ln
    else:
        runs.append([i, ln, f])
for s, l, f in runs:
    if f != "-":
        print(s, l, f)' "$@"
}

test_expect_success 'setup: image files and backing files' '
	fill disk.raw 1048576 3 &&
	fill base.raw 1048576 100 &&
	fill small.raw 300000 50 &&
	fill odd.raw 66000 9 &&
	qemu-img convert -f raw -O qcow2 small.raw small.qcow2 &&
	fill big.raw 5242880 11
'

test_expect_success 'no backing file: set bits read the image file, clear ones zeros' '
	M=1011000011110000 &&
	python3 mkac.py a.ac map=$M &&
	test "$(stat -c %s a.ac)" = 4098 &&
	python3 mkac.py ref a.ref disk.raw - 16 $M &&
	reads_as a.ac a.ref &&
	img-info a.ac >info &&
	grep "^file format: add-cow$" info &&
	grep "^virtual size: 1 MiB (1048576 bytes)$" info &&
	grep "^cluster_size: 65536$" info &&
	grep "^    image file: disk.raw$" info &&
	grep "^    image format: raw$" info &&
	! grep "^backing file" info &&
	map_files a.ac >got &&
	want_map 16 $M 1048576 disk.raw - >want &&
	test_cmp want got
'

test_expect_success 'raw backing file, names at odd offsets, header_size 512' '
	M=0110100111010010 &&
	python3 mkac.py b.ac hs=512 io=333 bo=97 backing=base.raw bfmt=raw map=$M &&
	test "$(stat -c %s b.ac)" = 514 &&
	python3 mkac.py ref b.ref disk.raw base.raw 16 $M &&
	reads_as b.ac b.ref &&
	img-info b.ac >info &&
	grep "^backing file: base.raw$" info &&
	grep "^backing file format: raw$" info &&
	map_files b.ac >got &&
	want_map 16 $M 1048576 disk.raw base.raw >want &&
	test_cmp want got
'

test_expect_success 'probed qcow2 backing shorter than the disk, header_size 8192' '
	M=0001011011000101 &&
	python3 mkac.py c.ac hs=8192 io=8000 bo=81 backing=small.qcow2 map=$M &&
	python3 mkac.py ref c.ref disk.raw small.raw 16 $M &&
	reads_as c.ac c.ref &&
	img-info c.ac >info &&
	grep "^backing file: small.qcow2$" info
'

test_expect_success '512-byte clusters, image file not a multiple of 512' '
	M=$(python3 -c "print((\"1101\" * 40)[:129])") &&
	python3 mkac.py d.ac bits=9 image=odd.raw backing=base.raw bfmt=raw map=$M &&
	python3 mkac.py ref d.ref odd.raw base.raw 9 $M &&
	test "$(stat -c %s d.ref)" = 66048 &&
	reads_as d.ac d.ref &&
	img-info d.ac | grep "^virtual size: .*(66048 bytes)$" &&
	map_files d.ac >got &&
	want_map 9 $M 66048 odd.raw base.raw >want &&
	test_cmp want got
'

test_expect_success '2 MiB clusters, a partial last cluster' '
	python3 mkac.py e.ac bits=21 image=big.raw backing=base.raw bfmt=raw map=010 &&
	python3 mkac.py ref e.ref big.raw base.raw 21 010 &&
	reads_as e.ac e.ref &&
	img-info e.ac | grep "^cluster_size: 2097152$" &&
	map_files e.ac >got &&
	printf "0 1048576 base.raw\n2097152 2097152 big.raw\n" >want &&
	test_cmp want got
'

test_expect_success 'optional features are ignored, extra bitmap bytes too' '
	M=1100110011001100 &&
	python3 mkac.py f.ac opt=0xffffffffffffffff bmlen=64 map=$M &&
	python3 mkac.py ref f.ref disk.raw - 16 $M &&
	reads_as f.ac f.ref
'

test_expect_success 'img-create writes the documented header' '
	img-create -q -f add-cow -o image_file=new.raw,cluster_size=4096 \
		-b base.raw -F raw n.ac 1M &&
	test "$(stat -c %s new.raw)" = 1048576 &&
	test "$(stat -c %b new.raw)" = 0 &&
	test "$(stat -c %s n.ac)" = $((4096 + 32)) &&
	od -An -tx1 -N8 n.ac | tr -d " \n" >got &&
	printf 414444 >want && printf 5f434f57ff >>want &&
	test_cmp want got &&
	od -An -tu4 -j8 -N16 n.ac | tr -s " " | sed "s/^ //" >got &&
	echo "87 8 80 7" >want &&
	test_cmp want got &&
	od -An -tu8 -j24 -N16 n.ac | tr -s " " | sed "s/^ //" >got &&
	echo "0 0" >want &&
	test_cmp want got &&
	od -An -tu4 -j40 -N8 n.ac | tr -s " " | sed "s/^ //" >got &&
	echo "12 4096" >want &&
	test_cmp want got &&
	dd if=n.ac bs=1 skip=48 count=32 2>/dev/null >got &&
	{ printf "raw" && head -c 13 /dev/zero && printf "raw" && head -c 13 /dev/zero; } >want &&
	cmp want got &&
	dd if=n.ac bs=1 skip=80 count=15 2>/dev/null >got &&
	printf new.rawbase.raw >want &&
	test_cmp want got &&
	dd if=n.ac bs=1 skip=95 count=$((4096 - 95 + 32)) 2>/dev/null | tr -d "\\000" >got &&
	test_line_count = 0 got &&
	test ! -s got
'

test_expect_success 'img-create: same header as one built by hand' '
	img-create -q -f add-cow -o image_file=disk.raw h.ac &&
	python3 mkac.py hand.ac map=0000000000000000 &&
	cmp hand.ac h.ac &&
	img-create -q -f add-cow -o image_file=disk.raw -b base.raw -F raw hb.ac &&
	python3 mkac.py handb.ac backing=base.raw bfmt=raw map=0000000000000000 &&
	cmp handb.ac hb.ac &&
	reads_as hb.ac base.raw
'

test_done
