#!/bin/sh
# 9121-faults-rewrite.sh: img-compact and img-convert -n (every output format) meeting a failed read, a failed or short write, a full disk: one clear error naming a file, exit 1, the image consistent, and a rerun that completes.
test_description='img-compact and img-convert -n under failed reads, failed and short writes, full disks'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-faults.sh"

test_expect_success 'setup' '
	fault_images
'

for kind in read eio enospc short; do
	for f in $FORMATS; do
		test_expect_success "$f: img-compact, $kind faults" "
			survives_faults $kind a.$f a.raw img-compact -q f.img
		"
		test_expect_success "$f: img-convert -n, $kind faults" "
			survives_faults $kind b.$f a.raw img-convert -n -O $f a.qcow2 f.img
		"
	done
	test_expect_success "raw: img-convert -n, $kind faults" "
		survives_faults $kind b.raw.img a.raw img-convert -n -O raw a.qcow2 f.img
	"
done

test_done
