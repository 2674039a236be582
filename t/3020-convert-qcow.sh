#!/bin/sh
# 3020-convert-qcow.sh: img-convert -O qcow writes qcow (v1) images that qemu reads as the source: every cluster size, odd sizes, -c, -B, -n.
test_description='img-convert -O qcow'
. "$(dirname "$0")/lib.sh"

# same_disk SRC OUT: qemu sees the same disk in both, qemu's raw export of
# OUT equals ours, and our map of OUT means what qemu-img map says.
same_disk() {
	qemu-img compare "$1" "$2" &&
	raw_same -f qcow "$2" &&
	map_same -f qcow "$2"
}

# varied_writes IMAGE FMT: data at aligned and unaligned offsets, across
# an L2 boundary (2 MiB with 4 KiB clusters), zeros, and the last sector
# of an 8 MiB disk.
varied_writes() {
	qio "$2" "$1" "write -P 0x11 0 4k" "write -P 0x12 6000 3000" \
		"write -P 0x13 2040k 16k" "write -z 3M 64k" \
		"write -P 0x14 5M 1M" "write -z 5200k 4k" "write -P 0x15 8388096 512"
}

# mkqcow FILE SIZE CLUSTER_BITS L2_BITS: an empty qcow of any geometry
# qemu opens (img-create, like qemu-img, picks the geometry itself).
mkqcow() {
	perl -e '
		my ($f, $size, $cb, $l2b) = @ARGV;
		my $span = 2 ** ($cb + $l2b);
		my $n = int(($size + $span - 1) / $span);
		my $len = int((48 + 8 * $n + 511) / 512) * 512;
		open my $fh, ">", $f or die "$f: $!\n";
		binmode $fh;
		print $fh pack("NNQ>NNQ>CCnNQ>", 0x514649fb, 1, 0, 0, 0,
			       $size, $cb, $l2b, 0, 0, 48), "\0" x ($len - 48);
		close $fh or die "$f: $!\n";
	' "$@"
}

# length_ok FILE: the file ends on a 512-byte boundary.
length_ok() {
	test $(($(stat -c %s "$1") % 512)) = 0
}

test_expect_success 'setup sources' '
	qemu-img create -q -f qcow2 varied.qcow2 8M &&
	varied_writes varied.qcow2 qcow2 &&
	qemu-img create -q -f raw odd.raw 5243392 &&
	qio raw odd.raw "write -P 0x21 0 100k" "write -P 0x22 5242880 512" &&
	head -c 8388608 /dev/urandom >random.raw &&
	truncate -s 4M base.raw &&
	qio raw base.raw "write -P 0x55 0 4M" &&
	qemu-img create -q -f qcow2 -b base.raw -F raw over.qcow2 4M &&
	qio qcow2 over.qcow2 "write -z 512k 1M" "write -P 0x66 2M 4k" \
		"write -P 0x67 3M 64k" "write -z 4032k 64k"
'

test_expect_success 'qcow2 to qcow: same disk, 4 KiB clusters' '
	img-convert -O qcow varied.qcow2 varied.qcow &&
	same_disk varied.qcow2 varied.qcow &&
	test $(img-poke varied.qcow 32 read u8) = 12 &&
	length_ok varied.qcow &&
	qio qcow varied.qcow "read -P 0x13 2040k 16k" "read -P 0 3M 64k" \
		"read -P 0x15 8388096 512"
'

# Runs break only where an L2 table was placed: at most once per 2 MiB.
test_expect_success 'new clusters are appended in runs' '
	img-convert -O qcow random.raw random.qcow &&
	same_disk random.raw random.qcow &&
	qemu-img map --output=json random.qcow >map.json &&
	test $(grep -c "\"data\": true" map.json) -le 4
'

test_expect_success 'size a multiple of 512, not of the cluster size' '
	img-convert -O qcow odd.raw odd.qcow &&
	same_disk odd.raw odd.qcow &&
	test $(img-poke odd.qcow 24 read be64) = 5243392 &&
	length_ok odd.qcow &&
	img-convert -c -O qcow odd.raw odd-c.qcow &&
	same_disk odd.raw odd-c.qcow &&
	length_ok odd-c.qcow
'

test_expect_success '-c: compressed clusters qemu reads' '
	img-convert -c -O qcow varied.qcow2 varied-c.qcow &&
	same_disk varied.qcow2 varied-c.qcow &&
	img-map varied-c.qcow >map.out &&
	grep -q compressed map.out &&
	qio qcow varied-c.qcow "read -P 0x11 0 4k" "read -P 0x14 5M 80k" &&
	test $(stat -c %s varied-c.qcow) -lt $(stat -c %s varied.qcow) &&
	length_ok varied-c.qcow
'

test_expect_success '-c: incompressible clusters are stored plainly' '
	img-convert -c -O qcow random.raw random-c.qcow &&
	same_disk random.raw random-c.qcow
'

test_expect_success 'qemu writes on into our output' '
	cp varied-c.qcow grow.qcow &&
	qio qcow grow.qcow "write -P 0x31 1M 192k" "write -P 0x32 5M 4k" &&
	qio qcow grow.qcow "read -P 0x31 1M 192k" "read -P 0x32 5M 4k" \
		"read -P 0x14 5124k 76k" "read -P 0x11 0 4k"
'

test_expect_success '-B: zeros over backing data are stored, the rest shows through' '
	img-convert -O qcow -B base.raw -F raw over.qcow2 over.qcow &&
	same_disk over.qcow2 over.qcow &&
	test $(img-poke over.qcow 32 read u8) = 9 &&
	qemu-img info over.qcow >info.out &&
	grep -q "^backing file: base.raw" info.out &&
	qio qcow over.qcow "read -P 0 512k 1M" "read -P 0x55 1536k 512k" \
		"read -P 0x66 2M 4k" "read -P 0 4032k 64k" &&
	qemu-img map --output=json over.qcow >map.json &&
	grep -q "\"depth\": 1" map.json
'

test_expect_success '-B with -c' '
	img-convert -c -O qcow -B base.raw -F raw over.qcow2 over-c.qcow &&
	same_disk over.qcow2 over-c.qcow
'

test_expect_success '-n into a qcow full of other data' '
	qemu-img create -q -f qcow full.qcow 8M &&
	qio qcow full.qcow "write -P 0x77 0 8M" &&
	size=$(stat -c %s full.qcow) &&
	img-convert -n -O qcow varied.qcow2 full.qcow &&
	same_disk varied.qcow2 full.qcow &&
	test $(stat -c %s full.qcow) = $size
'

test_expect_success '-n into a compressed qcow, and -n -c' '
	img-convert -c -O qcow full.qcow packed.qcow &&
	img-convert -n -O qcow random.raw packed.qcow &&
	same_disk random.raw packed.qcow &&
	img-convert -n -c -O qcow varied.qcow2 packed.qcow &&
	same_disk varied.qcow2 packed.qcow
'

test_expect_success '-n into a qcow over a backing file: zeros are written' '
	qemu-img create -q -f qcow -b base.raw -F raw tb.qcow 4M &&
	qio qcow tb.qcow "write -P 0x99 0 2M" &&
	img-convert -n -O qcow over.qcow2 tb.qcow &&
	same_disk over.qcow2 tb.qcow
'

test_expect_success '-n --target-is-zero into an empty qcow' '
	img-create -q -f qcow empty.qcow 8M &&
	img-convert -n --target-is-zero -O qcow varied.qcow2 empty.qcow &&
	same_disk varied.qcow2 empty.qcow
'

for geo in "9 6" "9 12" "10 8" "12 13" "15 6" "16 6" "16 13"; do
	set -- $geo
	test_expect_success "-n into $((1 << $1))-byte clusters, $((1 << $2))-entry L2 tables" "
		mkqcow g-$1-$2.qcow 8388608 $1 $2 &&
		cp g-$1-$2.qcow gc-$1-$2.qcow &&
		img-convert -n -O qcow varied.qcow2 g-$1-$2.qcow &&
		same_disk varied.qcow2 g-$1-$2.qcow &&
		img-convert -n -c -O qcow varied.qcow2 gc-$1-$2.qcow &&
		same_disk varied.qcow2 gc-$1-$2.qcow &&
		img-convert -n -O qcow random.raw gc-$1-$2.qcow &&
		same_disk random.raw gc-$1-$2.qcow &&
		length_ok gc-$1-$2.qcow
	"
done

test_expect_success 'a corrupt target is refused, not written into' '
	qemu-img create -q -f qcow bad.qcow 8M &&
	qio qcow bad.qcow "write -P 0x77 0 64k" &&
	l1=$(img-poke bad.qcow 40 read be64) &&
	img-poke bad.qcow $l1 be64 0x7fff0000 &&
	cp bad.qcow bad0.qcow &&
	test_expect_code 1 img-convert -n -O qcow varied.qcow2 bad.qcow 2>err &&
	cat err &&
	grep -q "L2 table at 0x7fff0000" err &&
	cmp bad.qcow bad0.qcow
'

test_done
