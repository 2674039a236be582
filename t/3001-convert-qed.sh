#!/bin/sh
# 3001-convert-qed.sh: img-convert -O qed specifics: -o, -B (own and unrelated backing), zero clusters, -n, --target-is-zero, -S, sparseness, odd sizes, the default format.
test_description='img-convert to QED'
. "$(dirname "$0")/lib.sh"

M=$((1024 * 1024))
K=1024

# top_extents < JSON: qemu-img map --output=json reduced to what the top
# image itself holds: "START LENGTH data" or "START LENGTH zero" per
# depth-0 extent, neighbours with the same kind merged (offsets ignored).
top_extents() {
	perl -MJSON::PP -e '
		$SIG{__DIE__} = sub { return if $^S; print STDERR @_; exit 1 };
		local $/;
		my $list = JSON::PP->new->decode(<STDIN>);
		my @out;
		for my $e (sort { $a->{start} <=> $b->{start} } @$list) {
			next if $e->{depth} != 0 || !$e->{present} || !$e->{length};
			my $kind = $e->{data} ? "data" : "zero";
			if (@out && $out[-1][0] + $out[-1][1] == $e->{start} &&
			    $out[-1][2] eq $kind) {
				$out[-1][1] += $e->{length};
			} else {
				push @out, [$e->{start}, $e->{length}, $kind];
			}
		}
		print "$_->[0] $_->[1] $_->[2]\n" for @out;
	'
}

# top_map IMAGE: top_extents of IMAGE.
top_map() {
	qemu-img map --output=json "$1" >top.json &&
	top_extents <top.json
}

# clean_check IMAGE: qemu-img check exits 0 and reports neither errors nor
# leaks.
clean_check() {
	qemu-img check -f qed "$1" >check.out 2>&1
	check_rc_=$?
	cat check.out &&
	test $check_rc_ = 0 &&
	grep "No errors were found" check.out &&
	! grep -i "leak" check.out
}

test_expect_success 'setup: a source with data, zeros and holes' '
	qemu-img create -q -f qcow2 src.qcow2 8M &&
	qio qcow2 src.qcow2 "write -P 0x11 0 64k" "write -P 0x12 100k 10k" \
		"write -P 0 1M 256k" "write -z 2M 128k" "write -P 0x13 3M 1M" \
		"write -P 0x14 $((8 * M - 512)) 512" &&
	qemu-img convert -O raw src.qcow2 src.expect
'

test_expect_success 'default options: 64 KiB clusters, table size 4, check, compare' '
	img-convert -O qed src.qcow2 def.qed &&
	test $(img-poke def.qed 0 read le32) = $((0x00444551)) &&
	test $(img-poke def.qed 4 read le32) = 65536 &&
	test $(img-poke def.qed 8 read le32) = 4 &&
	test $(img-poke def.qed 16 read le64) = 0 &&
	clean_check def.qed &&
	qemu-img compare -f qcow2 -F qed src.qcow2 def.qed
'

for cs_ts in 4096:2 1M:16 65536:8; do
	cs=${cs_ts%:*} ts=${cs_ts#*:}
	test_expect_success "-o cluster_size=$cs,table_size=$ts" "
		img-convert -O qed -o cluster_size=$cs,table_size=$ts src.qcow2 opt-$cs.qed &&
		test \$(img-poke opt-$cs.qed 4 read le32) = \$(numfmt --from=iec $cs) &&
		test \$(img-poke opt-$cs.qed 8 read le32) = $ts &&
		clean_check opt-$cs.qed &&
		qemu-img compare -f qcow2 -F qed src.qcow2 opt-$cs.qed
	"
done

test_expect_success 'two -o options add up' '
	img-convert -O qed -o cluster_size=4k -o table_size=2 src.qcow2 two.qed &&
	test $(img-poke two.qed 4 read le32) = 4096 &&
	test $(img-poke two.qed 8 read le32) = 2 &&
	clean_check two.qed
'

test_expect_success 'setup: a qcow2 base and a child over it' '
	truncate -s 8M base.raw &&
	qio raw base.raw "write -P 0x21 0 8M" "write -z 6M 1M" &&
	qemu-img convert -f raw -O qcow2 base.raw base.qcow2 &&
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 child.qcow2 8M &&
	# new data; zeros over data; the base bytes again; zeros over zeros
	qio qcow2 child.qcow2 "write -P 0x31 1M 64k" "write -P 0x32 3M 100k" \
		"write -z 4M 128k" "write -P 0x21 5M 64k" "write -z 6M 64k" \
		"write -P 0x33 6400k 64k" &&
	qemu-img convert -O raw child.qcow2 child.expect &&
	qemu-img convert -O raw base.qcow2 same.raw
'

test_expect_success '-B with the source'\''s own backing file: only the child'\''s clusters' '
	img-convert -O qed -B base.qcow2 child.qcow2 own.qed &&
	clean_check own.qed &&
	qemu-img info --output=json own.qed >own.json &&
	json_get own.json backing-filename >own.back &&
	echo backing-filename=base.qcow2 >expect &&
	test_cmp expect own.back &&
	# a backing file, format not raw: probed, as QED records it
	test $(img-poke own.qed 16 read le64) = 1 &&
	qemu-img compare child.qcow2 own.qed &&
	top_map child.qcow2 | grep -v "^$((6 * M)) " >expect &&
	top_map own.qed >actual &&
	test_cmp expect actual
'

test_expect_success '-B -F raw with an unrelated file of the same bytes: only what differs' '
	img-convert -O qed -B same.raw -F raw child.qcow2 other.qed &&
	clean_check other.qed &&
	qemu-img info --output=json other.qed >other.json &&
	json_get other.json backing-filename backing-filename-format >other.back &&
	printf "%s\n" backing-filename=same.raw backing-filename-format=raw >expect &&
	test_cmp expect other.back &&
	# backing file and no-probe flags
	test $(img-poke other.qed 16 read le64) = 5 &&
	qemu-img compare child.qcow2 other.qed &&
	cat >expect <<-EOF &&
	$((1 * M)) 65536 data
	$((3 * M)) 131072 data
	$((4 * M)) 131072 zero
	$((6400 * K)) 65536 data
	EOF
	top_map other.qed >actual &&
	test_cmp expect actual
'

test_expect_success 'zeros in the child over a non-zero backing become QED zero clusters' '
	qemu-img map --output=json other.qed >other.map &&
	grep "\"start\": $((4 * M)), \"length\": 131072, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false" other.map &&
	qemu-io -f qed -c "read -P 0 4M 128k" other.qed >read.out &&
	grep "read 131072/131072" read.out
'

test_expect_success '-B with a relative name is taken beside the output' '
	mkdir sub &&
	cp base.qcow2 sub/ &&
	img-convert -O qed -B base.qcow2 -F qcow2 child.qcow2 sub/child.qed &&
	clean_check sub/child.qed &&
	qemu-img compare child.qcow2 sub/child.qed &&
	qemu-img info --output=json sub/child.qed >sub.json &&
	json_get sub.json full-backing-filename | grep "=sub/base.qcow2$"
'

test_expect_success 'setup: a full QED target' '
	qemu-img create -q -f qed full.qed 8M &&
	qio qed full.qed "write -P 0x77 0 8M"
'

test_expect_success '-n into a full QED: old data does not show through, check clean' '
	img-convert -n -O qed src.qcow2 full.qed &&
	qemu-img compare -f qcow2 -F qed src.qcow2 full.qed &&
	qemu-img convert -O raw full.qed full.raw &&
	cmp src.expect full.raw &&
	clean_check full.qed &&
	# the need-check bit the edit set is cleared again
	test $(img-poke full.qed 16 read le64) = 0
'

test_expect_success '-n into a full QED from a child with a backing file' '
	qemu-img create -q -f qed full2.qed 8M &&
	qio qed full2.qed "write -P 0x78 0 8M" &&
	img-convert -n -O qed child.qcow2 full2.qed &&
	qemu-img compare -f qcow2 -F qed child.qcow2 full2.qed &&
	clean_check full2.qed
'

test_expect_success '-n into an empty QED: all but data become zero clusters' '
	qemu-img create -q -f qed empty1.qed 8M &&
	img-convert -n -O qed src.qcow2 empty1.qed &&
	qemu-img compare -f qcow2 -F qed src.qcow2 empty1.qed &&
	clean_check empty1.qed &&
	cat >expect <<-EOF &&
	0 131072 data
	131072 $((3 * M - 131072)) zero
	$((3 * M)) $((1 * M)) data
	$((4 * M)) $((4 * M - 65536)) zero
	$((8 * M - 65536)) 65536 data
	EOF
	top_map empty1.qed >actual &&
	test_cmp expect actual
'

test_expect_success '-n --target-is-zero: zeros are not written at all' '
	qemu-img create -q -f qed empty2.qed 8M &&
	img-convert -n --target-is-zero -O qed src.qcow2 empty2.qed &&
	qemu-img compare -f qcow2 -F qed src.qcow2 empty2.qed &&
	clean_check empty2.qed &&
	top_map empty2.qed >actual &&
	! grep zero actual &&
	top_map def.qed >expect &&
	test_cmp expect actual
'

test_expect_success '-S 0: every cluster allocated' '
	img-convert -O qed -S 0 src.qcow2 full-alloc.qed &&
	clean_check full-alloc.qed &&
	qemu-img compare -f qcow2 -F qed src.qcow2 full-alloc.qed &&
	echo "0 $((8 * M)) data" >expect &&
	top_map full-alloc.qed >actual &&
	test_cmp expect actual
'

test_expect_success 'sparse by default: zero data in the source is not allocated' '
	top_map def.qed >actual &&
	cat >expect <<-EOF &&
	0 131072 data
	$((3 * M)) $((1 * M)) data
	$((8 * M - 65536)) 65536 data
	EOF
	test_cmp expect actual
'

for size in $((5 * M + 512)) $((3 * M + 4096)) 1000448; do
	test_expect_success "size $size, not a multiple of the cluster size" "
		qemu-img create -q -f qcow2 odd-$size.qcow2 $size &&
		qio qcow2 odd-$size.qcow2 'write -P 0x41 0 4k' \
			'write -P 0x42 $((size - 4096)) 4096' &&
		img-convert -O qed odd-$size.qcow2 odd-$size.qed &&
		clean_check odd-$size.qed &&
		qemu-img compare odd-$size.qcow2 odd-$size.qed &&
		qemu-img info --output=json odd-$size.qed >odd.json &&
		json_get odd.json virtual-size >actual &&
		echo virtual-size=$size >expect &&
		test_cmp expect actual &&
		img-convert -O qed -o cluster_size=1M odd-$size.qcow2 odd1M-$size.qed &&
		clean_check odd1M-$size.qed &&
		qemu-img compare odd-$size.qcow2 odd1M-$size.qed
	"
done

test_expect_success 'without -O the output is raw' '
	img-convert def.qed default.out &&
	qemu-img info --output=json default.out >default.json &&
	json_get default.json format >actual &&
	echo format=raw >expect &&
	test_cmp expect actual &&
	cmp src.expect default.out
'

test_done
