#!/bin/sh
# 9003-damaged-chain.sh: backing chain loops, missing or wrong backing files, too deep chains, and things that are not images fail cleanly.
test_description='broken backing chains and non-images'
. "$(dirname "$0")/lib.sh"

# chain_fails IMAGE: reading through the chain fails (img-map, img-convert,
# img-info --backing-chain), while plain img-info, like qemu-img info,
# does not open backing files and succeeds.
chain_fails() {
	open_fails img-map "$1" &&
	open_fails img-convert "$1" &&
	open_fails img-info "$1" --backing-chain &&
	img-info "$1" >/dev/null
}

test_expect_success 'two images backing each other' '
	qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M &&
	qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M &&
	chain_fails a.qcow2
'

test_expect_success 'an image backing itself' '
	qemu-img create -q -f qcow2 -u -b zelf.qcow2 -F qcow2 self.qcow2 1M &&
	off=$(img-poke self.qcow2 8 read be64) &&
	test $(img-poke self.qcow2 $off read u8) = $(printf %d "'\''z") &&
	img-poke self.qcow2 $off u8 $(printf %d "'\''s") &&
	chain_fails self.qcow2
'

test_expect_success 'an image backing itself through a symlink' '
	ln -s loop.qcow2 link.qcow2 &&
	qemu-img create -q -f qcow2 -u -b link.qcow2 -F qcow2 loop.qcow2 1M &&
	chain_fails loop.qcow2
'

test_expect_success 'a loop of three formats' '
	qemu-img create -q -f qed -u -b l2.qcow2 -F qcow2 l1.qed 1M &&
	qemu-img create -q -f qcow2 -u -b l3.qcow -F qcow l2.qcow2 1M &&
	qemu-img create -q -f qcow -u -b l1.qed -F qed l3.qcow 1M &&
	chain_fails l1.qed &&
	chain_fails l3.qcow
'

test_expect_success 'missing backing file' '
	qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 1M &&
	chain_fails orphan.qcow2 &&
	grep gone.qcow2 of.err
'

test_expect_success 'missing backing file further down the chain' '
	qemu-img create -q -f qed -b orphan.qcow2 -F qcow2 -u orphan-top.qed 1M &&
	chain_fails orphan-top.qed &&
	grep gone.qcow2 of.err
'

test_expect_success 'missing backing file of a qcow and of a QED image' '
	qemu-img create -q -f qcow -u -b gone.raw -F raw orphan.qcow 1M &&
	chain_fails orphan.qcow &&
	qemu-img create -q -f qed -u -b gone.raw -F raw orphan.qed 1M &&
	chain_fails orphan.qed
'

test_expect_success 'backing file in the wrong recorded format' '
	qemu-img create -q -f qcow2 real.qcow2 1M &&
	qemu-img create -q -f qcow2 -u -b real.qcow2 -F qed wrongfmt.qcow2 1M &&
	chain_fails wrongfmt.qcow2
'

test_expect_success 'backing format we do not know' '
	qemu-img create -q -f qcow2 -u -b real.qcow2 -F vmdk vmdk.qcow2 1M &&
	chain_fails vmdk.qcow2 &&
	grep vmdk of.err
'

test_expect_success 'backing file that is damaged' '
	cp real.qcow2 bad-base.qcow2 &&
	img-poke bad-base.qcow2 20 be32 30 &&
	qemu-img create -q -f qcow2 -u -b bad-base.qcow2 -F qcow2 bad-top.qcow2 1M &&
	chain_fails bad-top.qcow2 &&
	grep bad-base.qcow2 of.err
'

test_expect_success 'a chain deeper than the limit fails cleanly' '
	qemu-img create -q -f qcow2 deep0.qcow2 1M &&
	i=1 &&
	while test $i -le 70; do
		qemu-img create -q -f qcow2 -u -b deep$((i - 1)).qcow2 -F qcow2 deep$i.qcow2 1M ||
		return 1
		i=$((i + 1))
	done &&
	chain_fails deep70.qcow2
'

test_expect_success 'a chain within the limit works' '
	both_same deep40.qcow2
'

test_expect_success 'a missing file' '
	all_fail nothing-here.qcow2 &&
	grep -i "no such file" of.err
'

test_expect_success 'a directory' '
	mkdir dir.qcow2 &&
	all_fail dir.qcow2
'

test_expect_success 'an unreadable file' '
	qemu-img create -q -f qcow2 locked.qcow2 1M &&
	chmod 000 locked.qcow2 &&
	if cat locked.qcow2 >/dev/null 2>&1; then
		echo "running as root: the file stays readable"
	else
		all_fail locked.qcow2
	fi
'

test_expect_success 'an empty file probes as raw and maps as empty' '
	: >empty &&
	img-map --output=json empty >out &&
	img-convert -O raw empty empty.raw &&
	test_must_fail test -s empty.raw
'

test_done
