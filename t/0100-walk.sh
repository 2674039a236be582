#!/bin/sh
# 0100-walk.sh: the table walker (lib/walk.c) sees every allocated cluster of qcow, qcow2 and QED images where qemu-img map puts it.
test_description='table walker against qemu-img map'
. "$(dirname "$0")/lib.sh"

# Expected walker lines from qemu-img map: one per cluster of cluster size
# $2 that the top layer allocates ("GUEST data 0xHOST" or "GUEST zero"),
# in guest order. Compressed clusters (data without an offset) are
# "GUEST data compressed".
expect_from_map() {
	qemu-img map --output=json "$1" | perl -ne '
		my $cs = '"$2"';
		next unless /"start": (\d+), "length": (\d+), "depth": 0, "present": true, "zero": (\w+), "data": (\w+)(?:, "offset": (\d+))?/;
		my ($s, $l, $z, $d, $o) = ($1, $2, $3, $4, $5);
		for (my $g = $s; $g < $s + $l; $g += $cs) {
			if ($d eq "true") {
				printf "%d data %s\n", $g,
				    defined $o ? sprintf("0x%x", $o + $g - $s) : "compressed";
			} else {
				printf "%d zero\n", $g;
			}
		}'
}

# What the walker says, in the same form (zero clusters without offsets).
walked() {
	img-walk "$1" | perl -ne '
		next if /^table /;
		die "unexpected: $_" if /problem|bad-table/;
		chomp;
		my ($g, $k, $h, $c) = split;
		print $k eq "zero" ? "$g zero\n" :
		      defined $c ? "$g data compressed\n" : "$g data $h\n";'
}

walk_same() {
	expect_from_map "$1" "$2" >walk.expect &&
	walked "$1" >walk.actual &&
	test_cmp walk.expect walk.actual
}

test_expect_success 'qcow2 v3 with data, zero and unallocated clusters' '
	qemu-img create -q -f qcow2 a.qcow2 64M &&
	qio qcow2 a.qcow2 "write -P 1 0 192k" "write -z 1M 64k" \
		"write -P 2 40M 64k" "write -P 3 63M 1M" &&
	walk_same a.qcow2 65536
'

test_expect_success 'qcow2 v2, 4 KiB clusters, several L2 tables' '
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k b.qcow2 64M &&
	qio qcow2 b.qcow2 "write -P 1 0 12k" "write -P 2 3M 8k" "write -P 3 60M 4k" &&
	walk_same b.qcow2 4096
'

test_expect_success 'qcow2 compressed clusters' '
	qemu-img create -q -f raw src.raw 4M &&
	qio raw src.raw "write -P 7 0 1M" "write -P 8 2M 64k" &&
	qemu-img convert -c -O qcow2 src.raw c.qcow2 &&
	walk_same c.qcow2 65536
'

test_expect_success 'qcow2 extended L2 entries walk whole clusters' '
	qemu-img create -q -f qcow2 -o extended_l2=on e.qcow2 8M &&
	qio qcow2 e.qcow2 "write -P 1 0 64k" "write -P 2 1M 64k" &&
	walk_same e.qcow2 65536
'

test_expect_success 'QED with zero clusters' '
	qemu-img create -q -f qed -o cluster_size=4k,table_size=2 q.qed 64M &&
	qio qed q.qed "write -P 1 0 8k" "write -z 64k 4k" "write -P 2 50M 4k" &&
	walk_same q.qed 4096
'

test_expect_success 'qcow (v1)' '
	qemu-img create -q -f qcow v1.qcow 16M &&
	qio qcow v1.qcow "write -P 1 0 8k" "write -P 2 9M 4k" &&
	walk_same v1.qcow 4096
'

test_expect_success 'a damaged L2 entry is named, not followed' '
	qemu-img create -q -f qcow2 d.qcow2 4M &&
	qio qcow2 d.qcow2 "write -P 1 0 64k" &&
	l2=$(img-walk d.qcow2 | sed -n "s/^table 0 //p") &&
	img-poke d.qcow2 $((l2)) be64 0x8000000000050200 &&
	img-walk d.qcow2 >out &&
	grep "^0 data 0x50200 problem: host offset not cluster aligned" out
'

test_expect_success 'an L2 table past the end of the file is reported' '
	qemu-img create -q -f qcow2 t.qcow2 4M &&
	qio qcow2 t.qcow2 "write -P 1 0 64k" &&
	img-poke t.qcow2 $((3 * 65536)) be64 0x8000000100000000 &&
	img-walk t.qcow2 >out &&
	grep "^bad-table 0 0x8000000100000000 offset beyond end of file" out
'

test_done
