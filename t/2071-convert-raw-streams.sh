#!/bin/sh
# 2071-convert-raw-streams.sh: raw disks arriving on pipes, compressed or in archive members, converted as they come: no temporary file, zeros unwritten, exact sizes.
test_description='raw streams converted on the fly'
. "$(dirname "$0")/lib.sh"

# disk.raw starts with 1 MiB of zeros (as disks do), then data, zeros,
# data, and ends neither on a cluster nor on a sector boundary.
test_expect_success 'a disk that starts with zeros' '
	head -c 1048576 /dev/zero >disk.raw &&
	head -c 300000 /dev/urandom >>disk.raw &&
	head -c 5000000 /dev/zero >>disk.raw &&
	printf "the end" >>disk.raw &&
	size=$(stat -c %s disk.raw) &&
	test $size = 6348583
'

# No spooling: a TMPDIR that does not exist would make any temporary
# file fail, so an output from it proves the bytes went straight through.
nospool() {
	TMPDIR=/nonexistent "$@"
}

# same_disk IMG FMT: IMG reads as disk.raw, its size disk.raw's rounded
# up to a sector (raw: the file is exactly disk.raw's length), and
# qemu-img check (which cannot check raw or qcow) finds nothing.
same_disk() {
	qemu-img compare -q -f raw -F "$2" disk.raw "$1" &&
	qemu-img info --output=json -f "$2" "$1" >sd.json &&
	test "$(json_get sd.json virtual-size)" = "virtual-size=6348800" &&
	case $2 in
	raw) test $(stat -c %s "$1") = 6348583 ;;
	qcow) ;;
	*) qemu-img check -q -f "$2" "$1" ;;
	esac
}

test_expect_success 'from a pipe to raw, qcow2 and QED: no temporary file, same disk' '
	for f in raw qcow2 qed; do
		cat disk.raw | nospool img-convert -O $f - out.$f 2>err &&
		test ! -s err &&
		same_disk out.$f $f || return 1
	done
'

test_expect_success 'a disk whose first KiB is zeros is not taken for an empty tar archive' '
	head -c 4096 /dev/zero | img-convert -O qed - zeros.qed &&
	qemu-img info --output=json zeros.qed >z.json &&
	test "$(json_get z.json virtual-size)" = "virtual-size=4096"
'

test_expect_success 'QED from a stream is byte for byte the QED from the file' '
	img-convert -f raw -O qed disk.raw file.qed &&
	cat disk.raw | img-convert -f raw -O qed - pipe.qed &&
	cmp file.qed pipe.qed
'

test_expect_success 'zeros are not written: only the data clusters are allocated' '
	cat disk.raw | img-convert -O qcow2 - out.qcow2 &&
	qemu-img map --output=json out.qcow2 >map.json &&
	grep "\"data\": true" map.json >data.json &&
	test_line_count = 2 data.json &&
	grep -q "\"start\": 1048576, \"length\": 327680" data.json &&
	grep -q "\"start\": 6291456, \"length\": 57344" data.json
'

test_expect_success 'xz, gzip and zstd files and pipes, tar members with --member' '
	xz -1 -c disk.raw >disk.raw.xz &&
	gzip -1 -c disk.raw >disk.raw.gz &&
	zstd -q -1 -c disk.raw >disk.raw.zst &&
	for c in xz gz zst; do
		nospool img-convert -O qed disk.raw.$c out.qed &&
		same_disk out.qed qed &&
		cat disk.raw.$c | nospool img-convert -O qcow2 - out.qcow2 &&
		same_disk out.qcow2 qcow2 || return 1
	done &&
	tar cf disk.tar disk.raw.gz disk.raw &&
	nospool img-convert -O qed --member disk.raw disk.tar out.qed &&
	same_disk out.qed qed &&
	xz -c disk.tar | nospool img-convert -O raw --member disk.raw - out.raw &&
	same_disk out.raw raw
'

test_expect_success 'a sparse tar member: its holes are skipped, not read as zeros' '
	qemu-img create -q -f raw sparse.raw 1G &&
	qio raw sparse.raw "write -P 0x33 512M 64k" &&
	tar --sparse -cf sparse.tar sparse.raw &&
	test $(stat -c %s sparse.tar) -lt 1048576 &&
	nospool img-convert -O qcow2 --member sparse.raw sparse.tar out.qcow2 &&
	qemu-img compare -q sparse.raw out.qcow2 &&
	qemu-img check -q out.qcow2 &&
	nospool img-convert -O raw --member sparse.raw sparse.tar out.raw &&
	cmp sparse.raw out.raw &&
	test $(du -k out.raw | cut -f1) -lt 1024
'

test_expect_success 'a truncated member read as it comes: the archive, the member and the offset; no output' '
	tar cf two.tar disk.raw.gz disk.raw &&
	xz -1 -c two.tar | head -c 400000 >cut.tar.xz &&
	test_expect_code 1 img-convert -O qcow2 --member disk.raw cut.tar.xz cut.qcow2 2>err &&
	one_line err "img-convert: cannot read '\''cut.tar.xz'\'': tar member '\''disk.raw'\'': Lzma library error:  No progress is possible at offset 400000" &&
	! test -e cut.qcow2 &&
	test "$(ls -A | grep "^\.")" = ""
'

test_expect_success 'an archive without --member, an image format, qcow output: through a temporary file' '
	tar cf one.tar disk.raw &&
	test_expect_code 1 nospool img-convert -O qed one.tar out.qed 2>err &&
	grep -q "cannot make a temporary file in '\''/nonexistent'\''" err &&
	img-convert -O qed one.tar out.qed &&
	same_disk out.qed qed &&
	cat disk.raw | img-convert -O qcow - out.qcow &&
	same_disk out.qcow qcow &&
	test_expect_code 1 sh -c "cat disk.raw | TMPDIR=/nonexistent img-convert -O qcow - out2.qcow" &&
	img-convert -O qcow2 disk.raw disk.qcow2 &&
	cat disk.qcow2 | img-convert -O qed - out.qed 2>err &&
	same_disk out.qed qed &&
	grep -q "holds a qcow2 image: read through a temporary file" err
'

test_expect_success '-c, -B and -S 0 from a stream' '
	cat disk.raw | img-convert -c -O qcow2 - comp.qcow2 &&
	same_disk comp.qcow2 qcow2 &&
	qemu-img check --output=json comp.qcow2 >c.json &&
	test "$(json_get c.json compressed-clusters)" != "compressed-clusters=0" &&
	head -c 6348583 /dev/urandom >base.raw &&
	dd if=disk.raw of=base.raw bs=1M count=2 conv=notrunc 2>/dev/null &&
	cat disk.raw | img-convert -O qcow2 -B base.raw -F raw - over.qcow2 &&
	qemu-img compare -q disk.raw over.qcow2 &&
	qemu-img map --output=json over.qcow2 >o.json &&
	! grep -q "\"start\": 1048576, .*\"depth\": 0" o.json &&
	cat disk.raw | img-convert -S 0 -O qed - full.qed &&
	same_disk full.qed qed &&
	test $(stat -c %s full.qed) -gt 6348583
'

test_expect_success 'a stream longer than a qcow2 image made for streams takes: one line, no output' '
	head -c 4294967808 /dev/zero |
	test_expect_code 1 img-convert -O qcow2 -o cluster_size=512 - long.qcow2 2>err &&
	one_line err "img-convert: cannot convert '\''-'\'' to '\''long.qcow2'\'': the stream is longer than 4294967296 bytes, the most a qcow2 image with 512-byte clusters takes from a stream (a larger cluster_size takes more)" &&
	! test -e long.qcow2 &&
	test "$(ls -A | grep "^\.")" = ""
'

test_expect_success 'stream to stream: qcow2 from a pipe to a pipe equals the file made from the same pipe' '
	cat disk.raw | img-convert -O qcow2 - out.qcow2 &&
	cat disk.raw | img-convert -O qcow2 - - | cat >piped.qcow2 &&
	cmp out.qcow2 piped.qcow2 &&
	cat disk.raw | img-convert -O raw - - | cmp - disk.raw
'

test_expect_success 'progress of a stream: bytes so far, the length at the end' '
	cat disk.raw | img-convert --progress=json -O qed - out.qed 2>prog &&
	tail -n 1 prog >last &&
	grep -qx "{\"done\": 6348583, \"total\": 6348583, \"bytes_written\": [0-9]*}" last &&
	if test $(wc -l <prog) -gt 2; then
		head -n 1 prog | grep -q "\"total\": null"
	fi
'

test_expect_success 'SIGUSR1 during a stream: one line with the bytes read' '
	mkfifo slow.fifo &&
	{ { head -c 2097152 disk.raw; sleep 2; tail -c +2097153 disk.raw; } >slow.fifo & } &&
	{ img-convert -O qed slow.fifo out.qed 2>usr1.err & } &&
	sleep 1 &&
	pkill -USR1 -f "img-convert -O qed slow.fifo" &&
	wait &&
	same_disk out.qed qed &&
	grep -Eqx "img-convert: [0-9]+ bytes|img-convert: working, no progress to report yet" usr1.err
'

test_done
