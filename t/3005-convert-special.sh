#!/bin/sh
# 3005-convert-special.sh: img-convert with special files: '-' for formats that cannot stream, devices, FIFOs and links to them written through, links to files followed, sources that cannot seek refused, a full file system named.
test_description='img-convert and special files'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup' '
	qemu-img create -q -f qcow2 src.qcow2 4M &&
	qio qcow2 src.qcow2 "write -P 0x5a 0 1M" "write -P 0x5b 3M 64k" &&
	qemu-img convert -O raw src.qcow2 expect.raw
'

for f in qcow2 qed qcow; do
	test_expect_success "-O $f to '-' streams what a file would hold; no file named '-'" "
		img-convert -O $f src.qcow2 - >out.$f 2>err &&
		img-convert -O $f src.qcow2 file.$f &&
		cmp file.$f out.$f &&
		test ! -s err &&
		! test -e ./-
	"
done

# Devices are named through links of our own: a broken img-convert
# must not be able to replace /dev/stdout or /dev/null themselves.
test_expect_success 'a link like /dev/stdout, into a pipe: written through, the link stays' '
	ln -s /proc/self/fd/1 stdout.link &&
	img-convert -O raw src.qcow2 stdout.link | cat >piped.raw &&
	cmp expect.raw piped.raw &&
	test -h stdout.link
'

test_expect_success 'a FIFO, and a link to one, are written through' '
	mkfifo fifo &&
	ln -s fifo fifo.link &&
	for out in fifo fifo.link; do
		{ timeout 60 cat fifo >got.raw & } &&
		timeout 60 img-convert -O raw src.qcow2 $out &&
		wait &&
		cmp expect.raw got.raw &&
		test -p fifo || return 1
	done &&
	test -h fifo.link &&
	test -z "$(ls -A | grep "^\.fifo")"
'

test_expect_success 'a link to a character device is written through' '
	ln -s /dev/null null.link &&
	img-convert -O raw src.qcow2 null.link &&
	test -h null.link &&
	test -c /dev/null &&
	test "$(readlink null.link)" = /dev/null
'

test_expect_success 'a full device names the output' '
	ln -s /dev/full full.link &&
	test_expect_code 1 img-convert -O raw src.qcow2 full.link 2>err &&
	one_line err "img-convert: cannot convert '"'src.qcow2'"' to '"'full.link'"': cannot write output: No space left on device" &&
	test -h full.link
'

test_expect_success 'other formats go through a device, FIFO or link to one too' '
	img-convert -O qcow2 src.qcow2 file.qcow2 &&
	img-convert -O qcow2 src.qcow2 null.link &&
	for out in fifo fifo.link; do
		{ cat fifo >from-fifo.qcow2 & } &&
		img-convert -O qcow2 src.qcow2 $out &&
		wait &&
		cmp file.qcow2 from-fifo.qcow2 || return 1
	done &&
	test -p fifo && test -h null.link && test -h fifo.link
'

test_expect_success 'a link to a file: the file it names is replaced, the link stays' '
	mkdir dir &&
	printf old >dir/target.raw &&
	ln -s dir/target.raw rel.link &&
	ln -s rel.link chain.link &&
	img-convert -O raw src.qcow2 chain.link &&
	test -h chain.link && test -h rel.link &&
	cmp expect.raw dir/target.raw &&
	img-convert -O qcow2 src.qcow2 rel.link &&
	test -h rel.link &&
	qemu-img compare -f raw -F qcow2 expect.raw dir/target.raw &&
	test -z "$(ls -A dir | grep "^\.")" &&
	test -z "$(ls -A | grep "^\.")"
'

test_expect_success 'a dangling link: the file it names is created' '
	ln -s dir/new.qed dangling.link &&
	img-convert -O qed src.qcow2 dangling.link &&
	test -h dangling.link &&
	qemu-img compare -f raw -F qed expect.raw dir/new.qed
'

# The temporary file must be made beside the target, not beside the
# link: on another file system a rename from beside the link would fail.
if d=$(mktemp -d /dev/shm/imgtools-3005.XXXXXX 2>/dev/null); then
	if test "$(stat -c %d "$d")" != "$(stat -c %d .)"; then
		test_set_prereq OTHERFS
		otherfs=$d
	else
		rmdir "$d"
	fi
fi

test_expect_success OTHERFS 'a link to a file on another file system: replaced atomically there' '
	printf old >"$otherfs/t.raw" &&
	ln -s "$otherfs/t.raw" far.link &&
	img-convert -O raw src.qcow2 far.link &&
	cmp expect.raw "$otherfs/t.raw" &&
	img-convert -O qcow2 src.qcow2 far.link &&
	qemu-img compare -f raw -F qcow2 expect.raw "$otherfs/t.raw" &&
	test -h far.link &&
	test "$(ls -A "$otherfs")" = t.raw
'
test -n "$otherfs" && rm -rf "$otherfs"

# sources that cannot seek: read as streams (t/2070 has the rest)
test_expect_success 'a source from a pipe (/dev/stdin) is read' '
	cat expect.raw | img-convert -O raw /dev/stdin out.raw &&
	cmp expect.raw out.raw && rm out.raw
'

test_expect_success 'a FIFO source waits for its writer, as cat does' '
	mkfifo in.fifo &&
	{ (sleep 1; cat expect.raw >in.fifo) & } &&
	timeout 20 img-convert -O raw in.fifo out.raw &&
	cmp expect.raw out.raw && rm out.raw &&
	{ cat src.qcow2 >in.fifo & } &&
	timeout 20 img-info in.fifo >info 2>err &&
	grep -x "file format: qcow2" info
'

test_expect_success "'-' as a source is standard input: read, but by the commands that edit in place" '
	for c in img-check img-compact; do
		test_expect_code 1 $c - <expect.raw 2>err &&
		one_line err "$c: cannot read an image from standard input ('"'-'"'): $c works on an image file in place" ||
		return 1
	done &&
	img-info - <src.qcow2 >info 2>err &&
	grep -x "file format: qcow2" info &&
	img-convert -O raw - out.raw <expect.raw &&
	cmp expect.raw out.raw && rm out.raw
'

test_expect_success 'a seekable standard input (a file) still reads' '
	img-convert -O raw /dev/stdin out.raw <src.qcow2 &&
	cmp expect.raw out.raw
'

# A full file system: every output path names the output file.
if test "$(id -u)" = 0 && mkdir mnt && mount -t tmpfs -o size=1m tmpfs mnt 2>/dev/null; then
	test_set_prereq TMPFS
fi

test_expect_success TMPFS 'a full file system: each output kind names the output, leaves nothing' '
	for f in raw qcow2 qed qcow; do
		test_expect_code 1 img-convert -O $f src.qcow2 mnt/d.$f 2>err &&
		test_line_count = 1 err &&
		grep "^img-convert: cannot convert .src.qcow2. to .mnt/d.$f.: .*: No space left on device\$" err &&
		test -z "$(ls -A mnt)" || return 1
	done
'

test_expect_success TMPFS '-n into a file on a full file system names it' '
	truncate -s 4M mnt/n.raw &&
	test_expect_code 1 img-convert -n -O raw src.qcow2 mnt/n.raw 2>err &&
	one_line err "img-convert: cannot convert '"'src.qcow2'"' to '"'mnt/n.raw'"': cannot write output: No space left on device" &&
	rm mnt/n.raw &&
	qemu-img create -q -f qcow2 mnt/n.qcow2 4M &&
	test_expect_code 1 img-convert -n -O qcow2 src.qcow2 mnt/n.qcow2 2>err &&
	test_line_count = 1 err &&
	grep "^img-convert: cannot convert '"'src.qcow2'"' to '"'mnt/n.qcow2'"': .*: No space left on device\$" err
'
test_have_prereq TMPFS && umount mnt

test_done
