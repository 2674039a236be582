#!/bin/sh
# 9010-damaged-writes.sh: the in-place commands on damaged images: clean and reading as before, or the file untouched.
test_description='img-check -r and img-compact on damaged images'
. "$(dirname "$0")/lib.sh"

# qemu_counts IMG: the counts of qemu-img check --output=json, one per line.
CHECK_KEYS='corruptions leaks check-errors allocated-clusters fragmented-clusters'
qemu_counts() {
	qemu-img check --output=json "$1" >"$1.qjson" 2>/dev/null
	test $? -lt 128 &&
	# shellcheck disable=SC2086
	json_get "$1.qjson" $CHECK_KEYS | sed 's/=<absent>$/=0/'
}

# our_counts IMG: the same from img-check.
our_counts() {
	img-check --output=json "$1" >"$1.ojson" 2>"$1.oerr"
	test $? -lt 128 && no_sanitizer_report "$1.oerr" &&
	# shellcheck disable=SC2086
	json_get "$1.ojson" $CHECK_KEYS | sed 's/=<absent>$/=0/'
}

# same_counts IMG: img-check and qemu-img check count the same, and exit
# the same.
same_counts() {
	qemu_counts "$1" >"$1.qc" &&
	our_counts "$1" >"$1.oc" &&
	test_cmp "$1.qc" "$1.oc" &&
	{ qemu-img check "$1" >/dev/null 2>&1; sc_q_=$?; } &&
	{ img-check "$1" >/dev/null 2>&1; sc_o_=$?; } &&
	{ test $sc_q_ = $sc_o_ || { echo >&2 "exit codes: qemu-img $sc_q_, img-check $sc_o_"; false; }; }
}

# writes_safe IMG: img-check -r leaks, img-check -r all and img-compact,
# each on a copy of IMG, either leave it byte for byte as it was, or leave
# it reading as before with the checkers agreeing on it; never a
# sanitizer report or a signal. Reading as before: qemu-img convert's
# output, or where qemu-img cannot open IMG (it refuses more than we do),
# ours. Agreeing: img-check and qemu-img check count the same (qcow, or
# what qemu-img cannot open: img-check finds nothing); img-compact's
# result clean.
writes_safe() {
	rm -f ws.ref
	ws_qemu_=1
	qemu-img convert -O raw "$1" ws.ref 2>/dev/null || {
		ws_qemu_=
		rm -f ws.ref
		img-convert -O raw "$1" ws.ref 2>/dev/null || rm -f ws.ref
	}
	ws_fmt_=$(qemu-img info --output=json "$1" 2>/dev/null |
		  sed -n 's/^ *"format": "\(.*\)",*$/\1/p')
	for ws_cmd_ in "img-check -r leaks" "img-check -r all" img-compact; do
		cp "$1" ws.img || return 1
		$ws_cmd_ ws.img >ws.out 2>ws.err
		ws_code_=$?
		no_sanitizer_report ws.err || return 1
		test $ws_code_ -lt 128 ||
			{ echo >&2 "$ws_cmd_: exit $ws_code_"; return 1; }
		cmp -s "$1" ws.img && continue
		echo >&2 "$ws_cmd_ wrote to $1 (exit $ws_code_)"
		test -f ws.ref ||
			{ echo >&2 "$ws_cmd_ wrote to an image nothing can read"; return 1; }
		if test -n "$ws_qemu_"; then
			qemu-img compare -q ws.ref ws.img
		else
			rm -f ws.raw &&
			img-convert -O raw ws.img ws.raw && cmp ws.ref ws.raw
		fi || { echo >&2 "$ws_cmd_ changed what $1 reads"; return 1; }
		if test "$ws_cmd_" = img-compact && test -n "$ws_qemu_"; then
			compact_clean ws.img ws.ref || return 1
		elif test "$ws_fmt_" = qcow || test -z "$ws_qemu_"; then
			test_expect_code 0 img-check ws.img >/dev/null || return 1
		else
			same_counts ws.img || return 1
		fi
	done
}

# ---- QED: header fields out of range ----------------------------------

# q.qed: 64 KiB clusters, tables of 4; L1 at 0x10000, data at 0x50000 and
# 0xa0000, their L2 table at 0x60000; qleak.qed: one more cluster at the
# end (0xb0000) that nothing references.
test_expect_success 'setup QED' '
	qemu-img create -q -f qed q.qed 8M &&
	qio qed q.qed "write -P 0x11 0 64k" "write -P 0x22 1M 64k" &&
	test $(img-poke q.qed $((0x60000)) read le64) = $((0x50000)) &&
	test $(stat -c %s q.qed) = $((0xb0000)) &&
	cp q.qed qleak.qed &&
	printf leak | dd of=qleak.qed bs=1 seek=$((0xb0000)) 2>/dev/null &&
	truncate -s $((0xc0000)) qleak.qed &&
	test_expect_code 3 img-check qleak.qed >/dev/null
'

test_expect_success 'QED header size 0: the header is no leak and never a move target' '
	damage qleak.qed hs0.qed 12 le32 0 &&
	test_expect_code 2 img-check hs0.qed >out 2>err &&
	grep "header size of 0 clusters" err &&
	! grep "Leaked cluster 0 " err &&
	writes_safe hs0.qed
'

test_expect_success 'QED header size past the L1 table, past the file' '
	damage qleak.qed hs2.qed 12 le32 2 &&
	writes_safe hs2.qed &&
	damage qleak.qed hs100.qed 12 le32 100 &&
	writes_safe hs100.qed
'

test_expect_success 'QED L1 table offset misaligned, in the header, past the end, on data' '
	damage qleak.qed l1mis.qed 40 le64 0x10200 &&
	writes_safe l1mis.qed &&
	damage qleak.qed l1hdr.qed 40 le64 0 &&
	writes_safe l1hdr.qed &&
	damage qleak.qed l1eof.qed 40 le64 0x100000 &&
	writes_safe l1eof.qed &&
	damage qleak.qed l1data.qed 40 le64 0xa0000 &&
	writes_safe l1data.qed
'

test_expect_success 'QED table and cluster size fields changed' '
	damage qleak.qed ts16.qed 8 le32 16 &&
	writes_safe ts16.qed &&
	damage qleak.qed ts1.qed 8 le32 1 &&
	writes_safe ts1.qed &&
	damage qleak.qed cs4k.qed 4 le32 4096 &&
	writes_safe cs4k.qed &&
	damage qleak.qed cs128k.qed 4 le32 131072 &&
	writes_safe cs128k.qed
'

test_expect_success 'QED L1 table moved down over leaked clusters, killed at every write' '
	qemu-img convert -O raw cs4k.qed cs4k.raw &&
	repair_survives_kills --verdict "qemu-img check" cs4k.qed cs4k.raw leaks &&
	img-poke kill.img 40 read le64 >l1 &&
	test $(cat l1) -lt $((0x10000))
'

test_expect_success 'QED L2 table over the L1 table, over data and the other table' '
	l1=$(img-poke q.qed 40 read le64) &&
	for t in $l1 0x50000 0x40000; do
		damage q.qed qo$t.qed $((l1 + 8)) le64 $t 48 le64 $((8 << 30)) &&
		same_counts qo$t.qed &&
		writes_safe qo$t.qed || return 1
	done
'

# over_data FMT IMG ENDIAN: L1 entry 0 of IMG names as its table the data
# cluster of guest offset 5 MiB, which the table of another L1 entry names:
# no repair may write its "entries" there (the data stays as it was).
over_data() {
	od_d1_=$(img-walk "$2" | awk '''$1 == 5242880 { print $3 }''') &&
	test -n "$od_d1_" &&
	od_l1_=$(img-poke "$2" 40 read $3) &&
	img-poke "$2" $od_l1_ $3 $od_d1_ &&
	dd if="$2" bs=4096 skip=$((od_d1_ / 4096)) count=1 of=od.before 2>/dev/null &&
	for od_r_ in leaks all; do
		cp "$2" od.img &&
		test_expect_code 2 img-check -r $od_r_ od.img >/dev/null 2>od.err &&
		no_sanitizer_report od.err &&
		dd if=od.img bs=4096 skip=$((od_d1_ / 4096)) count=1 of=od.after 2>/dev/null &&
		cmp od.before od.after || return 1
	done &&
	test_expect_code 1 img-compact od.img 2>/dev/null
}

test_expect_success 'L2 table over data another table names: -r all leaves that data alone' '
	qemu-img create -q -f qed -o cluster_size=4096,table_size=2 qod.qed 8M &&
	qio qed qod.qed "write -P 0x11 0 4k" "write -P 0x22 5M 4k" &&
	over_data qed qod.qed le64 &&
	grep "tables overlap other clusters: corruptions not repaired" od.err &&
	qemu-img create -q -f qcow qod.qcow 8M &&
	qio qcow qod.qcow "write -P 0x11 0 4k" "write -P 0x22 5M 4k" &&
	over_data qcow qod.qcow be64 &&
	grep "tables overlap other clusters: corruptions not repaired" od.err
'

# ---- table entries past the virtual size --------------------------------

# QED, 4 KiB clusters, tables of 2 clusters (512 entries, 2 MiB an L2
# table): data at 0, 1536 KiB and 5 MiB; the virtual size cut to 1 MiB
# leaves one L2 entry and one L1 entry past it.
test_expect_success 'QED entries past the virtual size are references' '
	qemu-img create -q -f qed -o cluster_size=4096,table_size=2 qb.qed 8M &&
	qio qed qb.qed "write -P 0x11 0 4k" "write -P 0x22 1536k 4k" \
		"write -P 0x33 5M 4k" &&
	img-poke qb.qed 48 le64 $((1 << 20)) &&
	same_counts qb.qed &&
	test_expect_code 0 img-check qb.qed >/dev/null &&
	writes_safe qb.qed
'

test_expect_success 'QED entry past the virtual size pointing past the end of the file' '
	cp qb.qed qbad.qed &&
	l2=$(img-poke qbad.qed $(img-poke qbad.qed 40 read le64) read le64) &&
	img-poke qbad.qed $((l2 + 8 * 500)) le64 0x10000000 &&
	same_counts qbad.qed &&
	test_expect_code 2 img-check qbad.qed >/dev/null 2>&1 &&
	writes_safe qbad.qed
'

test_expect_success 'QED L2 table named by two L1 entries counts as qemu-img counts it' '
	cp qb.qed qs.qed &&
	img-poke qs.qed 48 le64 $((8 << 20)) &&
	l1=$(img-poke qs.qed 40 read le64) &&
	img-poke qs.qed $((l1 + 8)) le64 $(img-poke qs.qed $l1 read le64) &&
	same_counts qs.qed &&
	writes_safe qs.qed
'

# qcow: 4 KiB clusters, 512 entries an L2 table; data at 0 and 2560 KiB,
# zeros at 2052 KiB; the virtual size cut to 2 MiB + 512 leaves two
# entries of the second table past it.
test_expect_success 'qcow entries past the virtual size are references' '
	qemu-img create -q -f qcow qc.qcow 3M &&
	qio qcow qc.qcow "write -P 0x11 0 4k" "write -P 0x22 2560k 4k" \
		"write -P 0 2052k 4k" &&
	img-poke qc.qcow 24 be64 $((2 * 1024 * 1024 + 512)) &&
	img-check qc.qcow >out &&
	grep "^3/513 " out &&
	writes_safe qc.qcow
'

test_expect_success 'qcow L1 table over the header, the backing file name, past the end; L2 table over the name, the L1 table' '
	qemu-img create -q -f raw qbase.raw 3M &&
	qemu-img create -q -f qcow -b qbase.raw -F raw qh.qcow 3M &&
	qio qcow qh.qcow "write -P 0x11 0 4k" "write -P 0x22 2560k 4k" &&
	test $(img-poke qh.qcow 8 read be64) = 48 &&
	damage qh.qcow qh0.qcow 40 be64 0 &&
	writes_safe qh0.qcow &&
	damage qh.qcow qh50.qcow 40 be64 50 &&
	writes_safe qh50.qcow &&
	damage qh.qcow qheof.qcow 40 be64 0x100000 &&
	writes_safe qheof.qcow &&
	l1=$(img-poke qh.qcow 40 read be64) &&
	damage qh.qcow qt48.qcow $l1 be64 48 &&
	writes_safe qt48.qcow &&
	damage qh.qcow qtl1.qcow $l1 be64 $l1 &&
	writes_safe qtl1.qcow &&
	for f in qh0 qh50 qheof qt48 qtl1; do
		cp $f.qcow w.qcow &&
		test_expect_code 2 img-check -r all w.qcow >/dev/null 2>err &&
		grep "nothing repaired" err &&
		cmp $f.qcow w.qcow || return 1
	done
'

# qcow cut inside its last data cluster, and cut before it: the rest of
# the cluster, and a cluster wholly past the end, read as zeros. -r all
# extends the file over the cut cluster (its data stays), clears the
# entry past the end where that still reads zeros, and leaves it where it
# would show the backing file's data instead.
test_expect_success 'qcow data cut short by the end of the file: -r all keeps what reads' '
	qemu-img create -q -f qcow qcut.qcow 3M &&
	qio qcow qcut.qcow "write -P 0x11 0 4k" "write -P 0x22 2560k 4k" &&
	d=$(img-walk qcut.qcow | awk "\$1 == 2621440 { print \$3 }") &&
	test -n "$d" &&
	cp qcut.qcow qcut1.qcow &&
	truncate -s $((d + 100)) qcut1.qcow &&
	test_expect_code 2 img-check qcut1.qcow >out 2>&1 &&
	grep "cut short by the end of the file" out &&
	writes_safe qcut1.qcow &&
	cp qcut1.qcow w.qcow &&
	img-check -r all w.qcow >/dev/null 2>err &&
	grep "the file is extended to cover it" err &&
	test $(stat -c %s w.qcow) = $((d + 4096)) &&
	cp qcut.qcow qcut0.qcow &&
	truncate -s $((d)) qcut0.qcow &&
	writes_safe qcut0.qcow &&
	cp qcut0.qcow w.qcow &&
	img-check -r all w.qcow >/dev/null 2>err &&
	grep "reads as zeros, as before" err &&
	qemu-img create -q -f raw qcbase.raw 3M &&
	qemu-io -f raw -c "write -P 0x33 0 3M" qcbase.raw >/dev/null &&
	qemu-img create -q -f qcow -b qcbase.raw -F raw qcb.qcow 3M &&
	qio qcow qcb.qcow "write -P 0x11 0 4k" "write -P 0x22 2560k 4k" &&
	d=$(img-walk qcb.qcow | awk "\$1 == 2621440 { print \$3 }") &&
	test -n "$d" &&
	truncate -s $((d)) qcb.qcow &&
	writes_safe qcb.qcow &&
	cp qcb.qcow w.qcow &&
	test_expect_code 2 img-check -r all w.qcow >/dev/null 2>err &&
	grep "not repaired, as clearing it would show the backing file" err &&
	qemu-img compare -q qcb.qcow w.qcow
'

# qcow2, 64 KiB clusters (512 MiB an L2 table): data at 0, 960 KiB and
# 600 MiB; the virtual size cut to 512 KiB.
test_expect_success 'qcow2 entries past the virtual size are references' '
	qemu-img create -q -f qcow2 q2b.qcow2 1G &&
	qio qcow2 q2b.qcow2 "write -P 0x11 0 64k" "write -P 0x22 960k 64k" \
		"write -P 0x33 600M 64k" "write -P 0 128k 64k" &&
	img-poke q2b.qcow2 24 be64 $((512 << 10)) &&
	same_counts q2b.qcow2 &&
	writes_safe q2b.qcow2
'

# qcow2 over a backing file, cut before its last data cluster: that
# cluster reads as zeros. -r all makes it a zero cluster (v3, and with
# extended L2 its subclusters' zero bits), or leaves it as qemu-img does
# (v2, where clearing it would show the backing file's data).
test_expect_success 'qcow2 data past the end of the file over a backing file: -r all keeps zeros' '
	qemu-img create -q -f raw q2base.raw 1M &&
	qemu-io -f raw -c "write -P 0x33 0 1M" q2base.raw >/dev/null &&
	for o in compat=0.10 compat=1.1 extended_l2=on,cluster_size=64k; do
		rm -f q2cut.qcow2 &&
		qemu-img create -q -f qcow2 -b q2base.raw -F raw -o $o q2cut.qcow2 1M &&
		qio qcow2 q2cut.qcow2 "write -P 0x11 0 4k" "write -P 0x22 512k 4k" &&
		d=$(img-walk q2cut.qcow2 | awk "\$1 == 524288 { print \$3 }") &&
		test -n "$d" &&
		truncate -s $((d)) q2cut.qcow2 &&
		same_counts q2cut.qcow2 &&
		writes_safe q2cut.qcow2 &&
		cp q2cut.qcow2 w.qcow2 &&
		{ img-check -r all w.qcow2 >/dev/null 2>err; echo $? >code; } &&
		qemu-img compare -q q2cut.qcow2 w.qcow2 &&
		if test $o = compat=0.10; then
			test $(cat code) = 2 && cmp q2cut.qcow2 w.qcow2
		else
			test $(cat code) = 0 && grep "reads as zeros, as before" err
		fi || return 1
	done
'

# The same v2 image, its refcount table entry also cleared: -r all must
# rebuild the refcount structures, which go at the end of the file; the
# cut data cluster the entry still names lies there. The new structures
# go after it (the file now covers it, zeros, counted once), so that it
# still reads as zeros. A v2 header with a backing name offset but an
# empty name has no backing file: the entry is cleared (fuzz finding
# qcow2-empty-backing-name-rebuild).
test_expect_success 'qcow2 v2 data past the end of the file, then a refcount rebuild: still zeros' '
	rm -f q2cut.qcow2 &&
	qemu-img create -q -f qcow2 -b q2base.raw -F raw -o compat=0.10 q2cut.qcow2 1M &&
	qio qcow2 q2cut.qcow2 "write -P 0x11 0 4k" "write -P 0x22 512k 4k" &&
	d=$(img-walk q2cut.qcow2 | awk "\$1 == 524288 { print \$3 }") &&
	test -n "$d" &&
	truncate -s $((d)) q2cut.qcow2 &&
	rt=$(img-poke q2cut.qcow2 52 read be32) &&
	img-poke q2cut.qcow2 $((rt + 4)) be32 0 &&
	cp q2cut.qcow2 w.qcow2 &&
	img-check -r all w.qcow2 >/dev/null 2>err &&
	grep "Rebuilt the refcount structures" err &&
	qemu-img compare -q q2cut.qcow2 w.qcow2 &&
	qemu-img check -q w.qcow2 &&
	test $(stat -c %s w.qcow2) -gt $((d + 65536)) &&
	qemu-img rebase -u -b "" q2cut.qcow2 &&
	img-poke q2cut.qcow2 8 be64 512 &&
	cp q2cut.qcow2 w.qcow2 &&
	img-check -r all w.qcow2 >/dev/null 2>err &&
	grep "Repairing L2 entry .*: data past the end of the file; guest range 0x80000..0x8ffff reads as zeros, as before" err &&
	qemu-img compare -q q2cut.qcow2 w.qcow2 &&
	qemu-img check -q w.qcow2
'

# An L1 table moved to the end of the file, running two clusters past it:
# qemu-img (and img-check, for parity) count no part of it, so its
# clusters look free. Leak repair must neither cut them off nor punch
# them (fuzz finding qcow2-l1-past-end-truncated).
test_expect_success 'qcow2 L1 table running past the end of the file is never reclaimed' '
	qemu-img create -q -f qcow2 -o cluster_size=512 q2l1.qcow2 64k &&
	qio qcow2 q2l1.qcow2 "write -P 0x44 0 8k" &&
	size=$(stat -c %s q2l1.qcow2) &&
	l1=$(img-poke q2l1.qcow2 44 read be32) &&
	dd if=q2l1.qcow2 bs=512 skip=$((l1 / 512)) count=1 2>/dev/null >l1.bin &&
	cat l1.bin >>q2l1.qcow2 &&
	img-poke q2l1.qcow2 40 be64 $size &&
	img-poke q2l1.qcow2 36 be32 192 &&
	for r in leaks all; do
		cp q2l1.qcow2 w.qcow2 &&
		{ img-check -r $r w.qcow2 >/dev/null 2>&1; true; } &&
		test $(stat -c %s w.qcow2) -ge $((size + 512)) &&
		qemu-img compare -q q2l1.qcow2 w.qcow2 || return 1
	done
'

# qcow2 v2 with its snapshot table at the end of the file, cut so that
# the table lies less than a cluster past it (read as zeros, tolerated by
# qemu-img), and the active L1 entry cleared: the snapshot's clusters in
# between are leaks. Cutting them off would put the table a cluster or
# more past the end; they become holes instead.
test_expect_success 'qcow2 snapshot table just past the end of the file pins it' '
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 qst.qcow2 256k &&
	qio qcow2 qst.qcow2 "write -P 0x11 0 16k" &&
	qemu-img snapshot -c one qst.qcow2 &&
	st=$(img-poke qst.qcow2 64 read be64) &&
	test $(stat -c %s qst.qcow2) -lt $((st + 4096)) &&
	truncate -s $((st - 100)) qst.qcow2 &&
	img-poke qst.qcow2 $(img-poke qst.qcow2 40 read be64) be64 0 &&
	same_counts qst.qcow2 &&
	writes_safe qst.qcow2 &&
	cp qst.qcow2 w.qcow2 &&
	img-check -r leaks w.qcow2 >/dev/null 2>err &&
	grep "Punched a hole" err &&
	test $(stat -c %s w.qcow2) = $((st - 100))
'

# A snapshot table of 300 all-zero entries in a zero cluster at the end
# of the file, two clusters past it (read as zeros, uncounted), and the
# active L2 table's refcount zeroed: -r all rebuilds the refcount
# structures, and must not put them where the table reads past the end
# (fuzz finding qcow2-snapshot-table-past-end-rebuild).
test_expect_success 'qcow2 -r all rebuild keeps clear of a snapshot table past the end' '
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 qsr.qcow2 256k &&
	qio qcow2 qsr.qcow2 "write -P 0x11 0 16k" &&
	size=$(stat -c %s qsr.qcow2) &&
	truncate -s $((size + 4096)) qsr.qcow2 &&
	img-poke qsr.qcow2 64 be64 $size &&
	img-poke qsr.qcow2 60 be32 300 &&
	l1=$(img-poke qsr.qcow2 40 read be64) &&
	l2=$(($(img-poke qsr.qcow2 $((l1 + 4)) read be32) & ~511)) &&
	rt=$(img-poke qsr.qcow2 48 read be64) &&
	rb=$(img-poke qsr.qcow2 $rt read be64) &&
	img-poke qsr.qcow2 $((rb + 2 * (l2 / 4096))) be16 0 &&
	qemu-img snapshot -l qsr.qcow2 >snap.before &&
	test $(grep -c "1970-01-01" snap.before) = 300 &&
	cp qsr.qcow2 w.qcow2 &&
	img-check -r all w.qcow2 >out 2>&1
	test $? = 2 &&
	grep "^Rebuilt the refcount structures" out &&
	qemu-img snapshot -l w.qcow2 >snap.after &&
	test_cmp snap.before snap.after &&
	qemu-img compare -q qsr.qcow2 w.qcow2
'

# Guest cluster 0 mapped onto the L1 table, whose entry lacks its COPIED
# flag: qemu-img -r all sets the flag and so changes what the guest reads
# there; ours reports it and leaves the table, and the image reads the
# same (fuzz finding qcow2-data-in-l1-table).
test_expect_success 'qcow2 -r all leaves the flags of a table the guest reads as data' '
	qemu-img create -q -f qcow2 -o cluster_size=4096 qdl.qcow2 256k &&
	qio qcow2 qdl.qcow2 "write -P 0x11 0 16k" &&
	l1=$(img-poke qdl.qcow2 40 read be64) &&
	l2=$(($(img-poke qdl.qcow2 $((l1 + 4)) read be32) & ~511)) &&
	img-poke qdl.qcow2 $l2 be64 $l1 &&
	img-poke qdl.qcow2 $l1 be32 0 &&
	cp qdl.qcow2 q.qcow2 && cp qdl.qcow2 w.qcow2 &&
	{ qemu-img check -q -r all q.qcow2 >/dev/null 2>&1; true; } &&
	test_must_fail qemu-img compare -q qdl.qcow2 q.qcow2 &&
	img-check -r all w.qcow2 >out 2>&1
	test $? = 2 &&
	grep "^Repairing cluster 3 refcount=1 reference=2" out &&
	grep "^ERROR OFLAG_COPIED L2 cluster: l1_index=0" out &&
	! grep "^Repairing OFLAG_COPIED" out &&
	qemu-img compare -q qdl.qcow2 w.qcow2
'

# ---- qcow2: what qemu-img calls corrupt --------------------------------

test_expect_success 'qcow2 L1 entry with flags and offset 0 (the header as its table)' '
	qemu-img create -q -f qcow2 q2h.qcow2 1M &&
	qio qcow2 q2h.qcow2 "write -P 0x11 0 64k" &&
	l1=$(img-poke q2h.qcow2 40 read be64) &&
	damage q2h.qcow2 q2h1.qcow2 $l1 be64 0x8000000000000000 &&
	same_counts q2h1.qcow2 &&
	test_expect_code 2 img-check q2h1.qcow2 >/dev/null 2>&1 &&
	writes_safe q2h1.qcow2 &&
	damage q2h.qcow2 q2h2.qcow2 $l1 be64 0x4000000000000000 &&
	same_counts q2h2.qcow2 &&
	writes_safe q2h2.qcow2
'

test_expect_success 'qcow2 L1 table over the header, active or of a snapshot; L2 table there' '
	damage q2h.qcow2 q2l0.qcow2 40 be64 0 &&
	same_counts q2l0.qcow2 &&
	writes_safe q2l0.qcow2 &&
	l1=$(img-poke q2h.qcow2 40 read be64) &&
	damage q2h.qcow2 q2l2.qcow2 $l1 be64 0x200 &&
	same_counts q2l2.qcow2 &&
	writes_safe q2l2.qcow2 &&
	cp q2h.qcow2 q2sl0.qcow2 &&
	qemu-img snapshot -c s q2sl0.qcow2 &&
	img-poke q2sl0.qcow2 $(img-poke q2sl0.qcow2 64 read be64) be64 0 &&
	same_counts q2sl0.qcow2 &&
	writes_safe q2sl0.qcow2 &&
	for f in q2l0 q2sl0 q2l2; do
		cp $f.qcow2 w.qcow2 &&
		test_expect_code 2 img-check -r all w.qcow2 >/dev/null 2>err &&
		grep "overlaps the header: nothing repaired" err &&
		cmp $f.qcow2 w.qcow2 || return 1
	done
'

# shorten_extra IMG: the first snapshot table entry of IMG carries 8 bytes
# of extra data instead of 24 (id and name move up, the table shrinks).
shorten_extra() {
	perl -e '
		open my $f, "+<", $ARGV[0] or die "$!\n";
		binmode $f;
		seek $f, 64, 0; read $f, my $h, 8;
		my $at = unpack "Q>", $h;
		seek $f, $at, 0; read $f, my $e, 40;
		my ($idl, $nl, $xl) = (unpack("n", substr($e, 12, 2)),
				       unpack("n", substr($e, 14, 2)),
				       unpack("N", substr($e, 36, 4)));
		die "extra data of $xl bytes\n" unless $xl == 24;
		read $f, my $rest, 24 + $idl + $nl;
		substr($e, 36, 4) = pack "N", 8;
		substr($rest, 8, 16) = "";
		seek $f, $at, 0;
		print $f $e, $rest, "\0" x 16;
		close $f or die "$!\n";
	' "$1"
}

test_expect_success 'qcow2 snapshot table entry with too little extra data' '
	qemu-img create -q -f qcow2 q2s.qcow2 1M &&
	qio qcow2 q2s.qcow2 "write -P 0x11 0 64k" &&
	qemu-img snapshot -c s1 q2s.qcow2 &&
	qio qcow2 q2s.qcow2 "write -P 0x22 0 64k" &&
	cp q2s.qcow2 q2x.qcow2 &&
	shorten_extra q2x.qcow2 &&
	same_counts q2x.qcow2 &&
	test_expect_code 2 img-check q2x.qcow2 >/dev/null 2>&1 &&
	writes_safe q2x.qcow2
'

test_expect_success 'qcow2 snapshot table ending mid-entry' '
	qemu-img snapshot -c s2 q2s.qcow2 &&
	so=$(img-poke q2s.qcow2 64 read be64) &&
	for n in 100 60 30; do
		cp q2s.qcow2 q2t$n.qcow2 &&
		truncate -s $((so + n)) q2t$n.qcow2 &&
		same_counts q2t$n.qcow2 &&
		writes_safe q2t$n.qcow2 || return 1
	done
'

test_done
