#!/bin/sh
# 1000-create.sh: img-create's generic behaviour: sizes, preallocation, options, backing files, errors, atomic replacement, -q, the "Formatting" line.
test_description='img-create: generic behaviour'
. "$(dirname "$0")/lib.sh"

# formatting_same ARGS...: img-create and qemu-img create, given the same
# arguments with the file name first, print the same "Formatting" line.
formatting_same() {
	qemu-img create "$@" q.img | sed "s/'q.img'/'X'/" >q.out &&
	img-create "$@" m.img | sed "s/'m.img'/'X'/" >m.out &&
	test_cmp q.out m.out
}

for size in 512 4096 1k 64k 1M 3G 2T; do
	test_expect_success "raw size $size as qemu-img" "
		qemu-img create -q -f raw q-$size $size &&
		img-create -q -f raw m-$size $size &&
		test \$(stat -c %s m-$size) = \$(stat -c %s q-$size) &&
		test \$(stat -c %b m-$size) = 0
	"
done

test_expect_success 'raw size rounded up to 512' '
	img-create -q -f raw r1 1 &&
	test $(stat -c %s r1) = 512 &&
	img-create -q -f raw r1000 1000 &&
	test $(stat -c %s r1000) = 1024 &&
	img-create -q -f raw r0 0 &&
	test $(stat -c %s r0) = 0
'

test_expect_success 'raw is the default format; size=... as an option' '
	img-create -q dflt 1M &&
	test $(stat -c %s dflt) = 1048576 &&
	img-create -q -o size=2M opt &&
	test $(stat -c %s opt) = 2097152
'

test_expect_success 'preallocation off, falloc, full' '
	img-create -q -o preallocation=off p-off 4M &&
	img-create -q -o preallocation=falloc p-falloc 4M &&
	img-create -q -o preallocation=full p-full 4M &&
	test $(stat -c %s p-off) = 4194304 &&
	test $(stat -c %s p-falloc) = 4194304 &&
	test $(stat -c %s p-full) = 4194304 &&
	test $(stat -c %b p-off) = 0 &&
	test $(stat -c %b p-falloc) -ge 8192 &&
	test $(stat -c %b p-full) -ge 8192 &&
	cmp p-off p-full
'

test_expect_success 'bad preallocation mode is a usage error' '
	test_expect_code 2 img-create -o preallocation=metadata pm 1M 2>err &&
	! test -e pm
'

test_expect_success '-o help lists the options of each format' '
	img-create -f raw -o help >help-raw &&
	grep "^  size=<size>" help-raw &&
	grep "^  preallocation=<str>.*(off, falloc, full)" help-raw &&
	img-create -f qcow -o help >help-qcow &&
	grep "^  backing_file=" help-qcow &&
	img-create -f qed -o help >help-qed &&
	grep "^  cluster_size=<size>.*default 65536" help-qed &&
	grep "^  table_size=" help-qed
'

test_expect_success 'usage errors exit 2 and create nothing' '
	test_expect_code 2 img-create -f nosuch u1 1M &&
	test_expect_code 2 img-create -o nosuch=1 u2 1M 2>err &&
	grep "nosuch" err &&
	test_expect_code 2 img-create u3 12Q &&
	test_expect_code 2 img-create u4 -5 &&
	test_expect_code 2 img-create &&
	test_expect_code 2 img-create -F raw u5 1M &&
	! test -e u1 && ! test -e u2 && ! test -e u3 && ! test -e u5
'

test_expect_success 'a missing size fails (exit 1)' '
	test_expect_code 1 img-create -f raw nosize 2>err &&
	grep "size" err &&
	! test -e nosize
'

test_expect_success 'setup a qcow2 backing file' '
	qemu-img create -q -f qcow2 base.qcow2 3M
'

test_expect_success '-b without -F fails naming the probed format' '
	test_expect_code 1 img-create -f qcow -b base.qcow2 nofmt 2>err &&
	grep "qcow2" err &&
	! test -e nofmt
'

test_expect_success '-b takes the size of the backing file' '
	img-create -q -f qcow -b base.qcow2 -F qcow2 over.qcow &&
	img-info over.qcow | grep "virtual size: 3 MiB" &&
	img-create -q -f qed -b base.qcow2 -F qcow2 over.qed &&
	img-info over.qed | grep "virtual size: 3 MiB"
'

test_expect_success 'a missing backing file fails unless -u' '
	test_expect_code 1 img-create -f qcow -b gone -F raw miss.qcow 1M &&
	! test -e miss.qcow &&
	img-create -q -u -f qcow -b gone -F raw unsafe.qcow 1M &&
	test -s unsafe.qcow
'

test_expect_success '-u without a size fails' '
	test_expect_code 1 img-create -u -f qcow -b base.qcow2 -F qcow2 nsz.qcow &&
	! test -e nsz.qcow
'

test_expect_success 'an existing file is replaced atomically' '
	echo old >repl &&
	ino=$(stat -c %i repl) &&
	ln repl repl-link &&
	img-create -q -f qcow repl 1M &&
	test $(stat -c %i repl) != $ino &&
	echo old >expect &&
	test_cmp expect repl-link &&
	img-info repl | grep "file format: qcow" &&
	! ls -a | grep "^\.repl\."
'

for fmt in raw qcow qed; do
	test_expect_success "a failed write ($fmt) leaves no file" "
		test_expect_code 1 env IMG_FAULT_WRITE=1 img-create -f $fmt -o preallocation=full fault-$fmt 1M &&
		! test -e fault-$fmt &&
		! ls -a | grep '^\.fault-'
	"
done

test_expect_success 'a failed write keeps the old file' '
	echo keep >kept &&
	test_expect_code 1 env IMG_FAULT_WRITE=1 img-create -f qed kept 1M &&
	echo keep >expect &&
	test_cmp expect kept
'

test_expect_success '-q prints nothing' '
	img-create -q -f qed quiet 1M >out 2>err &&
	test_line_count = 0 out &&
	test_line_count = 0 err
'

test_expect_success 'Formatting line as qemu-img: raw' '
	formatting_same -f raw -o size=1048576 &&
	formatting_same -f raw -o size=1048576,preallocation=falloc
'

test_expect_success 'Formatting line as qemu-img: qcow' '
	formatting_same -f qcow -o size=1073741824 &&
	formatting_same -f qcow -b base.qcow2 -F qcow2 &&
	formatting_same -f qcow -b base.qcow2 -F qcow2 -o size=8388608 &&
	formatting_same -f qcow -o size=1048576,preallocation=full
'

test_expect_success 'Formatting line as qemu-img: qed' '
	formatting_same -f qed -o size=1048576 &&
	formatting_same -f qed -b base.qcow2 -F qcow2 &&
	formatting_same -f qed -o size=1048576,cluster_size=4096,table_size=8 &&
	formatting_same -f qed -o size=0,preallocation=falloc,table_size=2
'

test_expect_success 'Formatting line: size as given, before rounding' '
	formatting_same -f raw -o size=1000
'

test_expect_success 'Formatting line: size options in bytes, not as typed' '
	formatting_same -f qed -o size=1048576,cluster_size=64k
'

test_expect_success 'fractional sizes such as 1.5M; a fraction needs a unit' '
	img-create -q -f raw frac 1.5M &&
	test $(stat -c %s frac) = 1572864 &&
	img-create -q -f raw frac2 0.25k &&
	test $(stat -c %s frac2) = 512 &&
	test_expect_code 2 img-create -q -f raw frac3 1.5
'

test_expect_success 'repeated -o options add up, later ones win' '
	img-create -f qed -o cluster_size=4k -o table_size=2 -o cluster_size=8k rep.qed 1M >out &&
	grep "cluster_size=8192 table_size=2" out
'

test_done
