#!/bin/sh
# 7010-demote-qed.sh: img-demote on QED images: zero-cluster entries replaced (unallocated, or stored zeros over a backing file that is not zero there), need-check cleared, dry run, --list, crash safety at every write.
test_description='img-demote on QED images'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-demote.sh"

# base.qed: 4 MiB of data, zeros at 3M. z.qed: data and 9 zero entries,
# no backing file. over.qed: over base.qed, 3 zero entries, two where
# base.qed holds data, one where it reads zeros.
test_expect_success 'setup' '
	qemu-img create -q -f qed base.qed 4M &&
	qemu-io -c "write -P 7 0 3M" -c "write -z 3M 1M" base.qed >/dev/null &&
	qemu-img create -q -f qed z.qed 4M &&
	qemu-io -c "write -P 1 0 1M" -c "write -z 1M 512k" -c "write -P 2 2M 64k" \
		-c "write -z 3M 64k" z.qed >/dev/null &&
	qemu-img create -q -f qed -b base.qed -F qed over.qed &&
	qemu-io -c "write -z 0 128k" -c "write -P 3 1M 64k" -c "write -z 3M 64k" \
		over.qed >/dev/null &&
	qemu-img convert -O raw z.qed z.raw &&
	qemu-img convert -O raw over.qed over.raw &&
	test_expect_code 0 qemu-img check z.qed >/dev/null &&
	test_expect_code 0 qemu-img check over.qed >/dev/null
'

test_expect_success '--list: zero clusters, their count and the growth' '
	demote_features z.qed >got &&
	echo "zero-clusters incompatible removable 9 262144 0" >want &&
	test_cmp want got &&
	demote_features over.qed >got &&
	echo "zero-clusters incompatible removable 3 393216 131072" >want &&
	test_cmp want got &&
	img-demote --list over.qed >out &&
	grep "^zero-clusters  *incompatible  *yes  *3 " out &&
	grep -F "1 unallocated, 2 stored as zero clusters" out
'

test_expect_success 'dry run writes nothing and says the growth' '
	cp over.qed dry.qed &&
	img-demote -n --output=json dry.qed >dry.json &&
	cmp over.qed dry.qed &&
	json_get dry.json dry-run features.0.removed file-size-before file-size-after >got &&
	cat >want <<-EOT &&
	dry-run=true
	features.0.removed=false
	file-size-before=$(stat -c %s over.qed)
	file-size-after=$(($(stat -c %s over.qed) + 131072))
	EOT
	test_cmp want got
'

test_expect_success 'no backing file: every zero entry becomes unallocated' '
	cp z.qed d.qed &&
	img-demote d.qed >out &&
	grep -F "Removed zero-clusters: 9 unallocated, 0 stored" out &&
	demoted_clean d.qed z.raw &&
	test "$(stat -c %s d.qed)" = "$(stat -c %s z.qed)" &&
	demote_features d.qed >got &&
	test_line_count = 0 got &&
	qemu-img map --output=json d.qed >map &&
	! grep "\"zero\": true, \"data\": false, \"offset\"" map
'

test_expect_success 'over a backing file: stored zeros where it holds data' '
	cp over.qed d2.qed &&
	img-demote d2.qed >out &&
	demoted_clean d2.qed over.raw &&
	test "$(stat -c %s d2.qed)" = "$(($(stat -c %s over.qed) + 131072))" &&
	demote_features d2.qed >got &&
	test_line_count = 0 got &&
	qemu-img map --output=json d2.qed >map &&
	grep -c "\"depth\": 0, \"present\": true, \"zero\": false, \"data\": true" map >n &&
	test "$(cat n)" -ge 1
'

test_expect_success 'raw exports before and after are the same bytes' '
	qemu-img convert -O raw d2.qed after.raw &&
	cmp over.raw after.raw &&
	img-convert -O raw d.qed after2.raw &&
	cmp z.raw after2.raw
'

test_expect_success 'need-check alone: cleared after a clean check' '
	cp z.qed nc.qed &&
	img-poke nc.qed 16 le64 2 &&
	demote_features nc.qed >got &&
	printf "%s\n" "zero-clusters incompatible removable 9 262144 0" \
		"need-check incompatible removable 0 8 0" >want &&
	test_cmp want got &&
	img-demote --feature need-check nc.qed &&
	test "$(img-poke nc.qed 16 read le64)" = 0 &&
	demote_features nc.qed >got &&
	echo "zero-clusters incompatible removable 9 262144 0" >want &&
	test_cmp want got
'

test_expect_success 'a corrupt image is refused before anything is written' '
	cp z.qed bad.qed &&
	l1=$(img-poke bad.qed 40 read le64) &&
	img-poke bad.qed $((l1 + 8)) le64 $((1 << 40)) &&
	cp bad.qed bad.orig &&
	test_expect_code 1 img-demote bad.qed 2>err &&
	grep -F "img-demote: cannot demote '\''bad.qed'\'': '\''bad.qed'\'' has" err &&
	grep -F "img-check -r all" err &&
	cmp bad.qed bad.orig
'

test_expect_success 'kill -9 at every write: consistent, same data, a rerun finishes (no backing file)' '
	demote_survives_kills z.qed z.raw
'

test_expect_success 'kill -9 at every write: over a backing file' '
	demote_survives_kills over.qed over.raw
'

test_expect_success 'SIGTERM at every write stops at a safe point' '
	demote_survives_term over.qed over.raw
'

test_done
