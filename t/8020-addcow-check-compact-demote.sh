#!/bin/sh
# 8020-addcow-check-compact-demote.sh: img-check, img-compact and img-demote on add-cow pairs: exit codes, repairs of stray bits, what compact frees, demote leaving the image file standing alone, and kills at every write of demote and of img-convert -n.
test_description='add-cow check, compact, demote, kills'
. "$(dirname "$0")/lib.sh"

# bits AC [HS]: the COW bitmap of AC as a string of 0/1, cluster 0 first.
bits() {
	python3 -c '
import sys
d = open(sys.argv[1], "rb").read()[int(sys.argv[2]):]
print("".join(str(b >> i & 1) for b in d for i in range(8)))' "$1" "${2:-4096}"
}

# setbit AC CLUSTER VALUE [HS]: bit CLUSTER of AC set to VALUE, by hand.
setbit() {
	python3 -c '
import sys
f = open(sys.argv[1], "r+b")
cl, v, hs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f.seek(hs + cl // 8); b = f.read(1)[0]
b = b | 1 << cl % 8 if v else b & ~(1 << cl % 8)
f.seek(hs + cl // 8); f.write(bytes([b]))' "$1" "$2" "$3" "${4:-4096}"
}

# reads_as AC REF: AC exported by img-convert is REF byte for byte.
reads_as() {
	rm -f ra.raw &&
	img-convert -O raw "$1" ra.raw &&
	qemu-img compare -q -F raw "$2" ra.raw
}

# name_image AC NAME: AC names NAME (as long as the name it had) as its
# image file.
name_image() {
	python3 -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
n = sys.argv[2].encode()
assert len(n) == int.from_bytes(d[20:24], "little")
d[80:80 + len(n)] = n
open(sys.argv[1], "wb").write(d)' "$1" "$2"
}

# pair X: X.ac over base.qcow2 with image file X.raw, a copy of the pair
# p.ac/p.raw that setup builds.
pair() {
	cp p.raw "$1.raw" && cp p.ac "$1.ac" && name_image "$1.ac" "$1.raw"
}

# make_c AC: AC names c.raw, the pair p made with zeros written over
# clusters 1 (bit set, backing data), 40 (bit set by hand, backing zeros)
# and 41 (bit clear), and data over 44 (bit clear).
make_c() {
	pair c && { test "$1" = c.ac || mv c.ac "$1"; } &&
	qemu-io -f raw -c "write -P 0 2560k 128k" -c "write -P 0 64k 64k" \
		-c "write -P 0x77 2816k 64k" c.raw >/dev/null &&
	setbit "$1" 40 1 && setbit "$1" 1 1
}

# per_cluster_old_or_new GOT OLD NEW CS: each CS-byte cluster of raw GOT
# is OLD's or NEW's.
per_cluster_old_or_new() {
	python3 -c '
import sys
g, o, n = (open(f, "rb").read() for f in sys.argv[1:4])
cs = int(sys.argv[4])
bad = [i // cs for i in range(0, len(g), cs)
       if g[i:i + cs] != o[i:i + cs] and g[i:i + cs] != n[i:i + cs]]
if bad or len(g) != len(o):
    sys.exit("clusters neither old nor new: %s" % bad)' "$@"
}

# base.qcow2: 4 MiB, data in the first 2 MiB. child.qcow2 over it: some
# writes. p.ac/p.raw: the pair -B makes of child.qcow2 (bits only where it
# differs from the base).
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 base.qcow2 4M &&
	qio qcow2 base.qcow2 "write -P 0x11 0 2M" &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 child.qcow2 &&
	qio qcow2 child.qcow2 "write -P 0x21 0 128k" "write -z 512k 64k" \
		"write -P 0x22 3M 64k" "write -P 0x23 1984k 128k" &&
	img-convert -O add-cow -o image_file=p.raw -B base.qcow2 -F qcow2 \
		child.qcow2 p.ac &&
	reads_as p.ac child.qcow2 &&
	qemu-img convert -O raw child.qcow2 child.raw &&
	bits p.ac >got &&
	echo 1100000010000000000000000000000110000000000000001000000000000000 >want &&
	test_cmp want got
'

test_expect_success 'img-check: a clean pair exits 0' '
	test_expect_code 0 img-check p.ac >out &&
	grep "^No errors were found on the image.$" out &&
	grep "^6/64 = " out &&
	img-check --output=json p.ac >out.json &&
	json_get out.json allocated-clusters total-clusters >got &&
	printf "allocated-clusters=6\ntotal-clusters=64\n" >want &&
	test_cmp want got
'

test_expect_success 'img-check: a bitmap too short is corrupt (exit 2), reads fail' '
	pair s &&
	truncate -s $((4096 + 5)) s.ac &&
	test_expect_code 2 img-check s.ac >out 2>err &&
	grep "ERROR the COW bitmap holds 5 bytes; the 64 clusters of image file .* need 8" out err &&
	test_expect_code 2 img-check -r all s.ac >/dev/null 2>&1 &&
	all_fail s.ac &&
	grep "COW bitmap too short" of.err
'

test_expect_success 'img-check: stray bits past a shrunk image file are leaks (exit 3); -r leaks clears them' '
	pair t &&
	truncate -s 3M t.raw &&
	img-convert -O raw t.ac t.before &&
	test_expect_code 3 img-check t.ac >out 2>&1 &&
	grep "^Leaked: 1 bits set past the end of the disk (cluster 48 on)$" out &&
	test_expect_code 0 img-check -r leaks t.ac >out &&
	test "$(stat -c %s t.ac)" = $((4096 + 6)) &&
	bits t.ac >got &&
	echo 110000001000000000000000000000011000000000000000 >want &&
	test_cmp want got &&
	test_expect_code 0 img-check t.ac &&
	reads_as t.ac t.before
'

test_expect_success 'img-check -r all: stray bits in the last byte and in bytes past it' '
	pair u &&
	truncate -s $((3 * 1048576 + 5 * 65536)) u.raw &&
	setbit u.ac 53 1 && setbit u.ac 55 1 &&
	printf "\\001\\200" >>u.ac &&
	img-convert -O raw u.ac u.before &&
	test_expect_code 3 img-check -q u.ac &&
	img-check u.ac 2>&1 | grep "^Leaked: 4 bits set past the end of the disk (cluster 53 on)$" &&
	test_expect_code 0 img-check -r all u.ac >out 2>&1 &&
	grep "^Cleared 4 bits past the end of the disk$" out &&
	grep "^    4 leaked clusters$" out &&
	test "$(stat -c %s u.ac)" = $((4096 + 7)) &&
	bits u.ac >got &&
	echo 11000000100000000000000000000001100000000000000010000000 >want &&
	test_cmp want got &&
	test_expect_code 0 img-check u.ac &&
	reads_as u.ac u.before
'

test_expect_success 'img-check: a missing backing file is an error' '
	pair m &&
	cp base.qcow2 gone.qcow2 &&
	img-create -q -f add-cow -o image_file=m2.raw -b gone.qcow2 -F qcow2 m2.ac &&
	rm gone.qcow2 &&
	test_must_fail img-check m2.ac >out 2>err &&
	test_must_fail img-check -r all m2.ac >/dev/null 2>&1 &&
	cat out err | grep "gone.qcow2"
'

test_expect_success 'img-compact: zero clusters punched, a set bit cleared only over backing zeros' '
	make_c c.ac &&
	img-convert -O raw c.ac c.before &&
	blocks=$(stat -c %b c.raw) &&
	compact_counts c.ac &&
	cat >want <<-\EOT &&
	clusters-scanned=8
	zero-clusters=3
	clusters-freed=3
	clusters-kept=0
	leaks=0
	bytes-freed=196608
	EOT
	test_cmp want c.ac.counts &&
	reads_as c.ac c.before &&
	bits c.ac >got &&
	echo 1100000010000000000000000000000110000000000000001000000000000000 >want &&
	test_cmp want got &&
	test "$(stat -c %b c.raw)" -lt "$blocks" &&
	test_expect_code 0 img-check c.ac &&
	compact_counts c.ac &&
	grep "^zero-clusters=0$" c.ac.counts
'

# A set bit over a hole of the image file where the backing file reads
# zeros too reads zeros either way: it is cleared.
test_expect_success 'img-compact: a set bit over a hole and backing zeros is cleared' '
	pair h &&
	setbit h.ac 45 1 &&
	img-compact -q h.ac &&
	bits h.ac >got &&
	echo 1100000010000000000000000000000110000000000000001000000000000000 >want &&
	test_cmp want got
'

test_expect_success 'img-compact --dry-run changes nothing' '
	make_c cd.ac &&
	cp cd.ac c.orig && cp c.raw c.raw.orig &&
	blocks=$(stat -c %b c.raw) &&
	compact_counts cd.ac -n &&
	grep "^zero-clusters=3$" cd.ac.counts &&
	cmp c.orig cd.ac &&
	cmp c.raw.orig c.raw &&
	test "$(stat -c %b c.raw)" = "$blocks"
'

test_expect_success 'img-compact survives kills' '
	n=1 &&
	while :; do
		make_c k.ac &&
		IMG_FAULT_WRITE=$n IMG_FAULT_MODE=kill img-compact -q k.ac 2>/dev/null
		code=$?
		test $code = 137 || break
		test_expect_code 0 img-check -q k.ac &&
		reads_as k.ac c.before &&
		img-compact -q k.ac &&
		reads_as k.ac c.before || { echo >&2 "killed at write $n"; return 1; }
		n=$((n + 1))
	done &&
	test $code = 0 && test $n -gt 3
'

test_expect_success 'img-demote --list, --dry-run, --output=json' '
	pair d &&
	img-demote --list d.ac >out &&
	grep "^backing-file  *incompatible  *yes  *58 " out &&
	grep "58 clusters still read from base.qcow2" out &&
	cp d.ac d.ac.orig && cp d.raw d.raw.orig &&
	img-demote -n --output=json d.ac >dry.json &&
	json_get dry.json dry-run features.0.name features.0.entries features.0.bytes features.0.removed >got &&
	cat >want <<-EOT &&
	dry-run=true
	features.0.name=backing-file
	features.0.entries=58
	features.0.bytes=$((58 * 65536))
	features.0.removed=false
	EOT
	test_cmp want got &&
	cmp d.ac d.ac.orig && cmp d.raw d.raw.orig
'

test_expect_success 'img-demote: the image file then stands alone' '
	img-demote --output=json d.ac >d.json &&
	json_get d.json features.0.removed >got &&
	echo features.0.removed=true >want &&
	test_cmp want got &&
	qemu-img compare -q -F raw child.qcow2 d.raw &&
	qemu-img compare -q -f raw -F raw child.raw d.raw &&
	reads_as d.ac child.raw &&
	bits d.ac | tr -d 1 >got &&
	test_line_count = 1 got && test "$(cat got)" = "" &&
	test_expect_code 0 img-check d.ac &&
	img-demote --list --output=json d.ac >l.json &&
	json_get l.json features >got &&
	echo "features=[]" >want &&
	test_cmp want got
'

test_expect_success 'img-demote and img-compact leave no stray bits past the disk' '
	pair g &&
	truncate -s 3M g.raw &&
	img-convert -O raw g.ac g.before &&
	test_expect_code 3 img-check -q g.ac 2>/dev/null &&
	img-demote -q g.ac &&
	test_expect_code 0 img-check g.ac &&
	test "$(stat -c %s g.ac)" = $((4096 + 6)) &&
	qemu-img compare -q -f raw -F raw g.before g.raw &&
	pair q &&
	truncate -s 3M q.raw &&
	img-compact -q q.ac &&
	test_expect_code 0 img-check q.ac &&
	reads_as q.ac g.before
'

test_expect_success 'img-demote survives kills, a rerun finishes' '
	n=1 &&
	while :; do
		cp d.ac.orig d.ac && cp d.raw.orig d.raw &&
		IMG_FAULT_WRITE=$n IMG_FAULT_MODE=kill img-demote -q d.ac 2>/dev/null
		code=$?
		test $code = 137 || break
		test_expect_code 0 img-check -q d.ac &&
		reads_as d.ac child.raw &&
		img-demote -q d.ac &&
		qemu-img compare -q -f raw -F raw child.raw d.raw &&
		reads_as d.ac child.raw || { echo >&2 "killed at write $n"; return 1; }
		n=$((n + 1))
	done &&
	echo >&2 "killed at each of $((n - 1)) writes" &&
	test $code = 0 && test $n -gt 3 &&
	qemu-img compare -q -f raw -F raw child.raw d.raw
'

test_expect_success 'img-convert -n into a pair survives kills: old or new per cluster' '
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 new.qcow2 &&
	qio qcow2 new.qcow2 "write -P 0x31 64k 192k" "write -z 1M 128k" \
		"write -P 0x32 3M 1M" "discard 0 64k" &&
	qemu-img convert -O raw new.qcow2 new.raw &&
	img-convert -O raw p.ac old.raw &&
	n=1 &&
	while :; do
		pair k &&
		IMG_FAULT_WRITE=$n IMG_FAULT_MODE=kill \
			img-convert -n -O add-cow new.qcow2 k.ac 2>/dev/null
		code=$?
		test $code = 137 || break
		img-convert -O raw k.ac got.raw &&
		per_cluster_old_or_new got.raw old.raw new.raw 65536 &&
		test_expect_code 0 img-check -q k.ac &&
		img-convert -n -O add-cow new.qcow2 k.ac &&
		reads_as k.ac new.raw || { echo >&2 "killed at write $n"; return 1; }
		n=$((n + 1))
	done &&
	echo >&2 "killed at each of $((n - 1)) writes" &&
	test $code = 0 && test $n -gt 3 &&
	reads_as k.ac new.raw
'

test_done
