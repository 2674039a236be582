#!/bin/sh
# 2060-convert-interrupted.sh: a failed, interrupted or killed img-convert never leaves a partial destination (fault injection at every write).
test_description='img-convert output appears whole or not at all'
. "$(dirname "$0")/lib.sh"

# Temporary files img-convert leaves beside a destination named dst.raw.
leftovers() {
	ls -A | grep '^\.dst\.raw\.' || true
}

test_expect_success 'setup: a source whose export takes several writes' '
	qemu-img create -q -f qcow2 src.qcow2 16M &&
	qio qcow2 src.qcow2 "write -P 0x21 0 64k" "write -P 0x22 4M 64k" \
		"write -P 0x23 8M 1M" "write -P 0x24 15M 64k" &&
	qemu-img convert -O raw src.qcow2 expect.raw &&
	printf "the old destination\n" >old &&
	# count the writes: the first N that does not fail is one past them
	n=1 &&
	until env IMG_FAULT_WRITE=$n img-convert src.qcow2 probe.raw 2>/dev/null; do
		test $n -lt 1000 &&
		n=$((n + 1)) || return 1
	done &&
	cmp expect.raw probe.raw &&
	test $n -ge 5 &&
	echo $((n - 1)) >writes
'

test_expect_success 'a write failing at any point: exit 1, old destination intact, no temporary file' '
	n=1 &&
	while test $n -le $(cat writes); do
		cp old dst.raw &&
		test_expect_code 1 env IMG_FAULT_WRITE=$n img-convert src.qcow2 dst.raw 2>err &&
		echo "img-convert: cannot convert '"'"'src.qcow2'"'"' to '"'"'dst.raw'"'"': cannot write output: Input/output error" >expect &&
		test_cmp expect err &&
		cmp old dst.raw &&
		test -z "$(leftovers)" &&
		n=$((n + 1)) || return 1
	done
'

test_expect_success 'SIGTERM at any write: the temporary file is removed, no destination' '
	n=1 &&
	while test $n -le $(cat writes); do
		rm -f dst.raw &&
		test_expect_code 143 env IMG_FAULT_WRITE=$n IMG_FAULT_MODE=term \
			img-convert src.qcow2 dst.raw &&
		! test -e dst.raw &&
		test -z "$(leftovers)" &&
		n=$((n + 1)) || return 1
	done
'

test_expect_success 'SIGKILL at any write: an existing destination stays as it was' '
	n=1 &&
	while test $n -le $(cat writes); do
		cp old dst.raw &&
		test_expect_code 137 env IMG_FAULT_WRITE=$n IMG_FAULT_MODE=kill \
			img-convert src.qcow2 dst.raw &&
		cmp old dst.raw &&
		n=$((n + 1)) || return 1
	done &&
	# only a kill -9 can leave the temporary file; the next run is unharmed
	img-convert src.qcow2 dst.raw &&
	cmp expect.raw dst.raw
'

test_expect_success 'without faults the same command succeeds' '
	env IMG_FAULT_WRITE=$(($(cat writes) + 1)) img-convert src.qcow2 dst.raw &&
	cmp expect.raw dst.raw
'

test_done
