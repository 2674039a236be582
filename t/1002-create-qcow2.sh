#!/bin/sh
# 1002-create-qcow2.sh: img-create -f qcow2 against qemu-img create: the Formatting line, the header cluster, info fields, check, I/O, refusals.
test_description='qcow2 creation'
. "$(dirname "$0")/lib.sh"

mkdir -p ours theirs

# create_both NAME SIZE [OPTIONS]: the same image by img-create in ours/ and by
# qemu-img create in theirs/; the Formatting lines must be equal.
create_both() {
	name_=$1
	size_=$2
	shift 2
	(cd ours && img-create -f qcow2 "$@" $name_ $size_ >../out.ours) &&
	(cd theirs && qemu-img create -f qcow2 "$@" $name_ $size_ >../out.theirs) &&
	test_cmp out.theirs out.ours
}

info_fields() {
	qemu-img info --output=json "$1" >info.json &&
	json_get info.json virtual-size cluster-size format backing-filename \
		backing-filename-format format-specific.type \
		format-specific.data.compat format-specific.data.compression-type \
		format-specific.data.lazy-refcounts \
		format-specific.data.refcount-bits format-specific.data.data-file \
		format-specific.data.data-file-raw \
		format-specific.data.extended-l2 format-specific.data.corrupt
}

# valid NAME: qemu-img check is clean, info agrees with qemu-img's image,
# our readers open it, and qemu-io can write and read it back. (qemu-img
# 7.2 resolves a data file name against the working directory, hence cd.)
valid() {
	(cd ours && qemu-img check $1) >check.out &&
	grep -q "No errors were found" check.out &&
	(cd ours && info_fields $1) >fields.ours &&
	(cd theirs && info_fields $1) >fields.theirs &&
	test_cmp fields.theirs fields.ours &&
	img-info ours/$1 >/dev/null &&
	img-map ours/$1 >/dev/null &&
	if test "$(json_get ours/info.json virtual-size)" != virtual-size=0; then
		(cd ours && qemu-io -f qcow2 -c "write -P 0x5a 0 64k" \
			-c "read -P 0x5a 0 64k" $1 && qemu-img check $1) >/dev/null
	fi
}

# Same header cluster (and same file length, the layout being equal).
same_header() {
	cmp -n $2 ours/$1 theirs/$1 &&
	test $(wc -c <ours/$1) = $(wc -c <theirs/$1) &&
	cmp ours/$1 theirs/$1
}

n=0
while read size opts; do
	n=$((n + 1))
	test_expect_success "byte-identical: $size ${opts:-defaults}" "
		create_both h$n.qcow2 $size ${opts:+-o $opts} &&
		cs=\$(img-poke ours/h$n.qcow2 20 read be32) &&
		same_header h$n.qcow2 \$((1 << cs)) &&
		valid h$n.qcow2
	"
done <<EOF
1G
0
1000448
4T
1G cluster_size=4096
1G cluster_size=8192
1G cluster_size=2097152
1G compat=0.10
1G compat=v2,cluster_size=4096
1G compat=v3
1G compat=1.1,lazy_refcounts=on
1G refcount_bits=1
1G refcount_bits=2
1G refcount_bits=4
1G refcount_bits=8
1G refcount_bits=32
1G refcount_bits=64
1G extended_l2=on
1G extended_l2=on,cluster_size=16384
1G compression_type=zstd
1G compression_type=zlib,extended_l2=off,lazy_refcounts=off
EOF

test_expect_success 'backing file and format, header identical' '
	qemu-img create -q -f raw ours/base.raw 4M &&
	cp ours/base.raw theirs/ &&
	create_both over.qcow2 "" -b base.raw -F raw &&
	same_header over.qcow2 65536 &&
	valid over.qcow2 &&
	qemu-img create -q -f qcow2 ours/base.qcow2 6M &&
	cp ours/base.qcow2 theirs/ &&
	create_both over2.qcow2 8M -b base.qcow2 -F qcow2 -o compat=0.10 &&
	same_header over2.qcow2 65536 &&
	valid over2.qcow2
'

test_expect_success 'backing file unchecked (-u), cluster size 512' '
	create_both unsafe.qcow2 1M -u -b missing.qcow2 -F qcow2 -o cluster_size=512 &&
	same_header unsafe.qcow2 512 &&
	qemu-img create -q -f qcow2 ours/missing.qcow2 1M &&
	qemu-img check ours/unsafe.qcow2 >/dev/null
'

test_expect_success 'external data file, plain and raw' '
	create_both df.qcow2 5M -o data_file=df.data &&
	same_header df.qcow2 65536 &&
	cmp ours/df.data theirs/df.data &&
	valid df.qcow2 &&
	create_both dfr.qcow2 5M -o data_file=dfr.data,data_file_raw=on &&
	same_header dfr.qcow2 65536 &&
	test $(img-poke ours/dfr.qcow2 72 read be64) = 4 &&
	test $(img-poke ours/dfr.qcow2 88 read be64) = 2 &&
	valid dfr.qcow2 &&
	(cd ours && qemu-img compare -f raw -F qcow2 dfr.data dfr.qcow2)
'

test_expect_success 'cluster size 512 with a big size: more refblocks' '
	create_both big512.qcow2 64G -o cluster_size=512 &&
	cmp -n 40 ours/big512.qcow2 theirs/big512.qcow2 &&
	valid big512.qcow2 &&
	create_both big512r64.qcow2 16G -o cluster_size=512,refcount_bits=64 &&
	valid big512r64.qcow2 &&
	create_both max512.qcow2 128G -o cluster_size=512 &&
	valid max512.qcow2
'

# (falloc and full: qemu-img puts the L2 table before the refcounts; ours
# keeps the metadata=... layout, equally valid.)
# A preallocated image maps as allocated everywhere, and img-map agrees
# with qemu-img map. (Layouts may differ from qemu-img's where it adds
# refblocks as it goes.)
same_map() {
	(cd ours && qemu-img map --output=json $1) >map.qemu &&
	(cd ours && img-map --output=json $1) >map.img &&
	test_cmp map.qemu map.img &&
	case $1 in
	*x.qcow2) ;;   # an empty subcluster bitmap maps as unallocated
	*) ! grep -q "\"data\": false" map.qemu ;;
	esac
}

while read name same size opts; do
	test_expect_success "preallocation: $size $opts" "
		create_both $name.qcow2 $size -o $opts &&
		if test $same = same; then same_header $name.qcow2 65536; fi &&
		same_map $name.qcow2 &&
		valid $name.qcow2 &&
		test \$(wc -c <ours/$name.qcow2) -ge \$(wc -c <theirs/$name.qcow2)
	"
done <<EOF
pm same 10M preallocation=metadata
pm4k - 10M preallocation=metadata,cluster_size=4096
pm512 - 3M preallocation=metadata,cluster_size=512,refcount_bits=1
pmx same 5M preallocation=metadata,extended_l2=on
pmv2 same 5M preallocation=metadata,compat=0.10
pf - 3M preallocation=falloc
pfull - 3M preallocation=full
pdf same 3M preallocation=metadata,data_file=pdf.data
pdfr same 3M preallocation=full,data_file=pdfr.data,data_file_raw=on
EOF

test_expect_success 'Formatting line shows sizes as qemu-img does' '
	create_both fmt1.qcow2 1000000 &&
	create_both fmt2.qcow2 1G -o cluster_size=4k
'

test_expect_success 'an unaligned size is rounded up to 512' '
	img-create -q -f qcow2 ours/odd.qcow2 1000000 &&
	qemu-img create -q -f qcow2 theirs/odd.qcow2 1000000 &&
	same_header odd.qcow2 65536 &&
	img-create -q -f qcow2 -o cluster_size=4k ours/k4.qcow2 1G &&
	qemu-img create -q -f qcow2 -o cluster_size=4k theirs/k4.qcow2 1G &&
	same_header k4.qcow2 4096
'

test_expect_success 'fully preallocated data file holds zeros' '
	test $(wc -c <ours/pdfr.data) = 3145728 &&
	test $(du -k ours/pdfr.data | cut -f1) -ge 3072 &&
	test $(du -k ours/pfull.qcow2 | cut -f1) -ge 3072
'

test_expect_success 'preallocation with a backing file needs extended_l2' '
	create_both pbx.qcow2 4M -b base.raw -F raw -o preallocation=metadata,extended_l2=on &&
	valid pbx.qcow2 &&
	test_expect_code 1 img-create -q -f qcow2 -b base.raw -F raw \
		-o preallocation=metadata ours/bad.qcow2 4M 2>err &&
	test_line_count = 1 err &&
	grep -q extended_l2 err
'

test_expect_success '-o help lists the options' '
	img-create -f qcow2 -o help >help &&
	for o in cluster_size extended_l2 compression_type size compat \
		backing_file backing_fmt data_file data_file_raw lazy_refcounts \
		refcount_bits preallocation; do
		grep -q "^ *$o" help || return 1
	done &&
	! grep -q encrypt help
'

n=0
while read code opts; do
	n=$((n + 1))
	test_expect_success "refused with exit $code: $opts" "
		test_expect_code $code img-create -q -f qcow2 $opts ours/r$n.qcow2 1M 2>err &&
		test_line_count = 1 err &&
		! test -e ours/r$n.qcow2
	"
done <<EOF
1 -o cluster_size=3000
1 -o cluster_size=256
1 -o cluster_size=4M
1 -o refcount_bits=3
1 -o refcount_bits=128
1 -o refcount_bits=0
1 -o compat=0.10,lazy_refcounts=on
1 -o compat=v2,refcount_bits=8
1 -o compat=0.10,extended_l2=on
1 -o compat=0.10,compression_type=zstd
1 -o compat=0.10,data_file=x.data
1 -o extended_l2=on,cluster_size=8k
1 -o data_file_raw=on
2 -o encryption=on
2 -o encrypt.format=aes
2 -o no_such_option=1
2 -o cluster_size
2 -o cluster_size=64q
EOF

# A value the option cannot take at all (not a number, not one of its
# choices) is a usage error, like a malformed -o: exit 2. Values that parse
# but do not fit the image (cluster_size=4M, v2 with lazy refcounts) are
# refused by the format with exit 1, above.
for opts in compat=1.2 compression_type=lz4 preallocation=yes extended_l2=maybe; do
	test_expect_success "usage error (exit 2): -o $opts" "
		test_expect_code 2 img-create -q -f qcow2 -o $opts ours/bad.qcow2 1M 2>err &&
		test_line_count = 1 err &&
		! test -e ours/bad.qcow2
	"
done

test_expect_success 'image size too large for the cluster size' '
	test_expect_code 1 img-create -q -f qcow2 -o cluster_size=512 \
		ours/huge.qcow2 $((128 * 1024 * 1024 * 1024 + 512)) 2>err &&
	test_line_count = 1 err &&
	grep -q "too large for cluster size" err &&
	test_expect_code 1 img-create -q -f qcow2 ours/huge.qcow2 4P 2>err &&
	test_expect_code 2 img-create -q -f qcow2 ours/huge.qcow2 12x 2>err &&
	! test -e ours/huge.qcow2 &&
	img-create -q -f qcow2 -o cluster_size=2M ours/huge.qcow2 4P &&
	qemu-img check ours/huge.qcow2 >/dev/null
'

test_done
