#!/bin/sh
# 9120-faults-check.sh: img-check -r leaks and -r all meeting a failed read, a failed or short write, a full disk: one clear error naming the image, exit 1, the image consistent and reading the same, and a rerun that repairs it.
test_description='img-check -r under failed reads, failed and short writes, full disks'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-faults.sh"

test_expect_success 'setup' '
	fault_images
'

for kind in read eio enospc short; do
	for f in $FORMATS; do
		test_expect_success "$f: img-check -r leaks, $kind faults" "
			survives_faults $kind leak.$f leak.$f.raw img-check -q -r leaks f.img
		"
		test_expect_success "$f: img-check -r all, $kind faults" "
			survives_faults $kind leak.$f leak.$f.raw img-check -q -r all f.img
		"
	done
done

test_done
