#!/bin/sh
# 5020-compact-qed.sh: img-compact on QED images: zero clusters freed and the file shrunk, with and without a backing file, dry run, JSON, crash safety at every write, formats not supported yet.
test_description='img-compact on QED images'
. "$(dirname "$0")/lib.sh"

size_of() {
	stat -c %s "$1"
}
# a.raw: 40 clusters, 22 of them zeros, some at the end of the file.
test_expect_success 'setup' '
	zero_fill a.raw dddd0000dd00000000dddd0000dddddddd000000 &&
	qemu-img convert -S 0 -O qed a.raw a.qed &&
	test_expect_code 0 qemu-img check a.qed >/dev/null
'

test_expect_success 'dry run: writes nothing, reports what would be freed' '
	cp a.qed dry.qed &&
	compact_counts dry.qed -n &&
	cmp a.qed dry.qed &&
	img-compact --dry-run dry.qed >dry.out &&
	cmp a.qed dry.qed &&
	grep -F "Zero clusters found: 22" dry.out &&
	cat >want <<-\EOT &&
	clusters-scanned=40
	zero-clusters=22
	clusters-freed=22
	clusters-kept=0
	leaks=0
	bytes-freed=1441792
	EOT
	test_cmp want dry.qed.counts &&
	json_get dry.qed.json dry-run format >got &&
	printf "dry-run=true\nformat=qed\n" >want &&
	test_cmp want got
'

test_expect_success 'compact: the file shrinks, clean, same data' '
	cp a.qed b.qed &&
	compact_counts b.qed &&
	compact_clean b.qed a.raw &&
	test $(size_of b.qed) -lt $(size_of a.qed) &&
	test $(($(size_of a.qed) - $(size_of b.qed))) = $((22 * 65536)) &&
	json_get b.qed.json clusters-scanned zero-clusters file-size-before \
		file-size-after dry-run >got &&
	cat >want <<-EOT &&
	clusters-scanned=40
	zero-clusters=22
	file-size-before=$(size_of a.qed)
	file-size-after=$(size_of b.qed)
	dry-run=false
	EOT
	test_cmp want got
'

test_expect_success 'dry run and real run report the same counts' '
	sed "/^bytes-freed=/d" dry.qed.counts >want &&
	sed "/^bytes-freed=/d" b.qed.counts >got &&
	test_cmp want got
'

test_expect_success 'a second run finds nothing to do and writes nothing' '
	cp b.qed b2.qed &&
	img-compact b2.qed >out &&
	cmp b.qed b2.qed &&
	grep -F "Zero clusters found: 0" out
'

test_expect_success 'human report' '
	cp a.qed h.qed &&
	img-compact h.qed >out &&
	grep -F "Clusters scanned: 40" out &&
	grep -F "Zero clusters found: 22" out &&
	grep -F "Bytes freed: 1441792" out &&
	grep "^File size: .* -> " out &&
	cp a.qed q.qed &&
	img-compact -q q.qed >out &&
	test_line_count = 0 out
'

# Zeros over a non-zero backing file must stay zeros: zero entries.
test_expect_success 'backing file: zero clusters become zero entries' '
	zero_fill base.raw dddddddddddddddd &&
	qemu-img convert -O qed base.raw base.qed &&
	qemu-img create -q -f qed -b base.qed -F qed top.qed 1M &&
	qemu-io -f qed -c "write -P 0 0 128k" -c "write -P 7 128k 64k" \
		-c "write -P 0 256k 192k" top.qed >/dev/null &&
	qemu-img convert -O raw top.qed top.raw &&
	cp top.qed top0.qed &&
	compact_counts top.qed &&
	grep -Fx "zero-clusters=5" top.qed.counts &&
	compact_clean top.qed top.raw &&
	test $(size_of top.qed) -lt $(size_of top0.qed) &&
	qemu-img map --output=json top.qed >map.json &&
	grep "\"depth\": 0, .*\"zero\": true" map.json >/dev/null
'

# Two L2 tables (4 GiB), the second one mapping a single cluster that is
# zeros: the table goes too, and nothing is left stuck above a hole.
test_expect_success 'an L2 table left empty is dropped' '
	qemu-img create -q -f qed e.qed 4G &&
	qio qed e.qed "write -P 1 0 192k" "write -P 2 2G 64k" \
		"write -P 0 128k 64k" "write -P 0 2G 64k" &&
	qemu-img convert -O raw e.qed e.raw &&
	compact_counts e.qed &&
	compact_clean e.qed e.raw &&
	test $(size_of e.qed) = $((11 * 65536)) &&
	qemu-img check --output=json e.qed >chk.json &&
	json_get chk.json allocated-clusters >got &&
	echo allocated-clusters=2 >want &&
	test_cmp want got
'

test_expect_success 'pre-existing leaks are given back too' '
	cp b.qed leak.qed &&
	truncate -s +196608 leak.qed &&
	head -c 65536 /dev/urandom | dd of=leak.qed bs=64k seek=$(($(size_of b.qed) / 65536)) conv=notrunc 2>/dev/null &&
	test_expect_code 3 img-check leak.qed >/dev/null 2>&1 &&
	compact_counts leak.qed &&
	grep -Fx leaks=3 leak.qed.counts &&
	test $(size_of leak.qed) = $(size_of b.qed) &&
	compact_clean leak.qed a.raw
'

test_expect_success 'crash safety: killed at every write, no backing file' '
	zero_fill k.raw dd00d0000d00dd00 &&
	qemu-img convert -S 0 -O qed k.raw k.qed &&
	compact_survives_kills k.qed k.raw
'

test_expect_success 'crash safety: killed at every write, over a backing file' '
	compact_survives_kills top0.qed top.raw
'

test_expect_success 'raw: not supported (exit 1)' '
	cp a.raw r.raw &&
	test_expect_code 1 img-compact r.raw 2>err &&
	grep -F "compacting raw images is not supported" err &&
	cmp a.raw r.raw
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 img-compact 2>/dev/null &&
	test_expect_code 2 img-compact --output=xml a.qed 2>/dev/null &&
	test_expect_code 2 img-compact --bogus a.qed 2>/dev/null &&
	test_expect_code 1 img-compact nonexistent.qed 2>/dev/null
'

test_done
