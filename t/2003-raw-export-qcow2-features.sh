#!/bin/sh
# 2003-raw-export-qcow2-features.sh: qcow2 extended L2, data files, AES, snapshots, bitmaps and dirty images export and map as qemu-img does.
test_description='raw export and map of qcow2 images with optional features'
. "$(dirname "$0")/lib.sh"

test_expect_success 'extended L2: sub-cluster writes and write -z' '
	qemu-img create -q -f qcow2 -o extended_l2=on xl2.qcow2 8M &&
	qio qcow2 xl2.qcow2 "write -P 0x11 4k 4k" "write -z 16k 4k" \
		"write -P 0x12 70000 100" "write -z 1M 64k" "write -P 0x13 2M 96k" \
		"write -z 2M 2k" "write -P 0x14 3M 64k" "write -z -u 3M 8k" \
		"write -P 0x15 8386560 2048" &&
	both_same xl2.qcow2
'

test_expect_success 'extended L2 with 32 KiB and 2 MiB clusters' '
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k xl2-32k.qcow2 4M &&
	qio qcow2 xl2-32k.qcow2 "write -P 0x16 1k 1k" "write -z 33k 2k" \
		"write -P 0x17 100k 64k" &&
	both_same xl2-32k.qcow2 &&
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=2M xl2-2m.qcow2 8M &&
	qio qcow2 xl2-2m.qcow2 "write -P 0x18 64k 64k" "write -z 128k 64k" \
		"write -P 0x19 4100k 200k" &&
	both_same xl2-2m.qcow2
'

test_expect_success 'extended L2 over a backing file: unallocated subclusters show the backing' '
	truncate -s 4M xbase.raw &&
	qio raw xbase.raw "write -P 0x21 0 4M" &&
	qemu-img create -q -f qcow2 -o extended_l2=on -b xbase.raw -F raw xl2-top.qcow2 4M &&
	qio qcow2 xl2-top.qcow2 "write -P 0x22 4k 4k" "write -z 16k 4k" \
		"write -z 1M 64k" "write -P 0x23 2M 2k" &&
	both_same xl2-top.qcow2
'

test_expect_success 'extended L2, compressed clusters' '
	truncate -s 1M xsrc.raw &&
	qio raw xsrc.raw "write -P 0x24 0 256k" &&
	qemu-img convert -c -O qcow2 -o extended_l2=on xsrc.raw xl2-c.qcow2 &&
	qio qcow2 xl2-c.qcow2 "write -P 0x25 66k 2k" &&
	both_same xl2-c.qcow2
'

test_expect_success 'external data file' '
	qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 4M &&
	qio qcow2 df.qcow2 "write -P 0x31 0 4k" "write -P 0x32 1M 100k" \
		"write -z 2M 64k" "write -P 0x33 3M 1" &&
	both_same df.qcow2
'

test_expect_success 'external data file, data_file_raw=on' '
	qemu-img create -q -f qcow2 -o data_file=dfr.data,data_file_raw=on dfr.qcow2 4M &&
	qio qcow2 dfr.qcow2 "write -P 0x34 64k 4k" "write -P 0x35 1M 100k" \
		"write -z 2M 64k" &&
	both_same dfr.qcow2
'

test_expect_success 'external data file named relative to the image directory' '
	mkdir dsub &&
	(
		cd dsub &&
		qemu-img create -q -f qcow2 -o data_file=rel.data rel.qcow2 1M &&
		qio qcow2 rel.qcow2 "write -P 0x36 512k 64k" &&
		both_same rel.qcow2
	)
'

test_expect_success 'AES-encrypted qcow2' '
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=pass \
		-o encrypt.format=aes,encrypt.key-secret=sec0 aes.qcow2 4M &&
	qio_aes qcow2 aes.qcow2 pass "write -P 0x41 4k 8k" "write -P 0x42 100000 3333" \
		"write -z 1M 64k" "write -P 0x43 3M 1M" &&
	both_same --key pass aes.qcow2
'

test_expect_success 'key file: one trailing newline is optional, a second one is key' '
	qemu-img convert -O raw --object secret,id=sec0,data=pass \
		--image-opts driver=qcow2,file.filename=aes.qcow2,encrypt.key-secret=sec0 \
		aes.expect &&
	printf pass >key.bare &&
	img-convert -O raw --key-file key.bare aes.qcow2 aes.bare &&
	cmp aes.expect aes.bare &&
	printf "pass\n" >key.nl &&
	img-convert -O raw --key-file key.nl aes.qcow2 aes.nl &&
	cmp aes.expect aes.nl &&
	printf "pass\n\n" >key.nlnl &&
	{ img-convert -O raw --key-file key.nlnl aes.qcow2 aes.nlnl 2>err; test $? -le 1; } &&
	no_sanitizer_report err &&
	! cmp -s aes.expect aes.nlnl
'

test_expect_success 'AES: a missing or wrong key is named, not read as noise' '
	test_must_fail img-convert aes.qcow2 nokey.raw 2>err &&
	test_line_count = 1 err &&
	grep "^img-convert: cannot open .aes.qcow2.: image is encrypted: a key is needed (--key-file)" err &&
	printf wrong >key.wrong &&
	test_must_fail img-map --key-file key.wrong aes.qcow2 2>err &&
	grep "^img-map: cannot open .aes.qcow2.: wrong key: " err &&
	test_must_fail img-convert --key-file key.wrong aes.qcow2 wrong.raw 2>err &&
	grep "wrong key" err &&
	! test -e nokey.raw && ! test -e wrong.raw
'

test_expect_success 'AES-encrypted qcow2 with 4 KiB clusters over a plain backing file' '
	qemu-img create -q -f qcow2 aes-base.qcow2 2M &&
	qio qcow2 aes-base.qcow2 "write -P 0x44 0 2M" &&
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=pass \
		-o encrypt.format=aes,encrypt.key-secret=sec0,cluster_size=4k \
		-b aes-base.qcow2 -F qcow2 aes-top.qcow2 2M &&
	qio_aes qcow2 aes-top.qcow2 pass "write -P 0x45 6k 1k" "write -z 1M 8k" &&
	both_same --key pass aes-top.qcow2
'

test_expect_success 'snapshots present, data written after them' '
	qemu-img create -q -f qcow2 snap.qcow2 4M &&
	qio qcow2 snap.qcow2 "write -P 0x51 0 1M" "write -P 0x52 2M 64k" &&
	qemu-img snapshot -c first snap.qcow2 &&
	qio qcow2 snap.qcow2 "write -P 0x53 4k 4k" "write -z 512k 64k" \
		"write -P 0x54 3M 64k" &&
	qemu-img snapshot -c second snap.qcow2 &&
	qio qcow2 snap.qcow2 "write -P 0x55 2M 4k" "write -z 0 4k" &&
	both_same snap.qcow2
'

test_expect_success 'snapshots in a v2 image' '
	qemu-img create -q -f qcow2 -o compat=0.10 snap2.qcow2 4M &&
	qio qcow2 snap2.qcow2 "write -P 0x56 0 128k" &&
	qemu-img snapshot -c s snap2.qcow2 &&
	qio qcow2 snap2.qcow2 "write -P 0x57 64k 4k" &&
	both_same snap2.qcow2
'

test_expect_success 'persistent bitmaps present' '
	qemu-img create -q -f qcow2 bm.qcow2 4M &&
	qemu-img bitmap --add bm.qcow2 b0 &&
	qemu-img bitmap --add -g 128k bm.qcow2 b1 &&
	qio qcow2 bm.qcow2 "write -P 0x61 0 64k" "write -P 0x62 1M 4k" &&
	qemu-img bitmap --disable bm.qcow2 b1 &&
	both_same bm.qcow2
'

test_expect_success 'lazy refcounts, dirty after a crash' '
	qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 4M &&
	qio qcow2 lazy.qcow2 "write -P 0x71 0 64k" &&
	qio_crash qcow2 lazy.qcow2 "write -P 0x72 1M 128k" "write -z 0 4k" &&
	test $(img-poke lazy.qcow2 72 read be64) = 1 &&
	both_same lazy.qcow2
'

test_expect_success 'corrupt bit set (read-only opens are allowed)' '
	qemu-img create -q -f qcow2 corrupt.qcow2 1M &&
	qio qcow2 corrupt.qcow2 "write -P 0x73 64k 64k" &&
	img-poke corrupt.qcow2 72 be64 2 &&
	both_same corrupt.qcow2
'

test_expect_success 'unknown compatible and autoclear feature bits are ignored' '
	qemu-img create -q -f qcow2 unk.qcow2 1M &&
	qio qcow2 unk.qcow2 "write -P 0x74 0 4k" &&
	img-poke unk.qcow2 80 be64 0x8000000000000000 &&
	img-poke unk.qcow2 88 be64 0x4000000000000000 &&
	both_same unk.qcow2
'

test_expect_success 'LUKS: img-info describes it, reading data is refused' '
	qemu_img_pbkdf create -q -f qcow2 --object secret,id=s0,data=pw \
		-o encrypt.format=luks,encrypt.key-secret=s0 luks.qcow2 4M &&
	test -s luks.qcow2 &&
	img-info --output=json luks.qcow2 >info.json &&
	test "$(json_get info.json encrypted format-specific.data.encrypt.format)" = \
		"encrypted=true
format-specific.data.encrypt.format=luks" &&
	test_must_fail img-map luks.qcow2 2>err &&
	grep "^img-map: cannot open .luks.qcow2.: LUKS encryption is not supported" err &&
	test_must_fail img-convert luks.qcow2 out.raw 2>err &&
	! test -e out.raw
'

test_done
