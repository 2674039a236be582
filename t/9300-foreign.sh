#!/bin/sh
# 9300-foreign.sh: images in formats we do not read are recognised by the evidence qemu-img's probes use and refused, never read as raw; what qemu-img reads as raw, we read as raw.
test_description='foreign formats: refused as qemu-img would probe them'
. "$(dirname "$0")/lib.sh"

# qemu_probes_not_raw FILE: qemu-img does not take FILE for raw when it
# probes (it names another format, or fails to open it as that format),
# and reads it with -f raw.
qemu_probes_not_raw() {
	if qemu-img info --output=json "$1" >q.json 2>q.err; then
		test "$(json_get q.json format)" != "format=raw" ||
			{ echo >&2 "qemu-img probes $1 as raw"; return 1; }
	fi &&
	qemu-img info -f raw "$1" >/dev/null
}

# qemu_probes_raw FILE: qemu-img probes FILE as raw.
qemu_probes_raw() {
	qemu-img info --output=json "$1" >q.json &&
	test "$(json_get q.json format)" = "format=raw"
}

# refused FILE FORMAT: every command refuses FILE as FORMAT with the -f raw
# hint, writing nothing; with -f raw it reads as raw.
refused() {
	for rf_cmd_ in img-info img-map img-check "img-convert -O raw"; do
		rm -f rf.out &&
		test_expect_code 1 $rf_cmd_ "$1" $(test "$rf_cmd_" = "img-convert -O raw" && echo rf.out) \
			>/dev/null 2>rf.err &&
		echo "${rf_cmd_%% *}: cannot open '$1': unsupported format '$2' (use -f raw to read it as raw bytes)" >rf.expect &&
		test_cmp rf.expect rf.err &&
		! test -e rf.out || return 1
	done &&
	img-info --output=json -f raw "$1" >o.json &&
	test "$(json_get o.json format)" = "format=raw"
}

# read_as_raw FILE: probed, FILE is a raw disk to us too.
read_as_raw() {
	img-info --output=json "$1" >o.json &&
	test "$(json_get o.json format)" = "format=raw"
}

test_expect_success 'formats qemu-img creates: vmdk (sparse, flat descriptor), vhdx, vpc, vdi, parallels' '
	for f in vmdk vhdx vpc vdi parallels; do
		qemu-img create -q -f $f x.$f 1M &&
		qemu_probes_not_raw x.$f &&
		refused x.$f $f || return 1
	done &&
	qemu-img create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 1M &&
	head -1 flat.vmdk | grep -Fx "# Disk DescriptorFile" &&
	qemu_probes_not_raw flat.vmdk &&
	refused flat.vmdk vmdk
'

test_expect_success 'LUKS' '
	qemu_img_pbkdf create -q -f luks --object secret,id=s0,data=pw \
		-o key-secret=s0 x.luks 1M &&
	qemu_probes_not_raw x.luks &&
	refused x.luks luks &&
	# on purpose (img-formats(5)): a LUKS2 header, raw to qemu-img, is
	# refused too
	printf "LUKS\272\276\000\002" >luks2.img &&
	truncate -s 64k luks2.img &&
	qemu_probes_raw luks2.img &&
	refused luks2.img luks
'

# Made byte by byte, as the QEMU drivers probe them.
test_expect_success 'vmdk3 (COWD), bochs, cloop; a vmdk descriptor by hand' '
	printf COWD >cowd.img && truncate -s 64k cowd.img &&
	qemu_probes_not_raw cowd.img &&
	refused cowd.img vmdk &&
	printf "Bochs Virtual HD Image" >bochs.img &&
	truncate -s 32 bochs.img && printf Redolog >>bochs.img &&
	truncate -s 48 bochs.img && printf Growing >>bochs.img &&
	truncate -s 64 bochs.img && printf "\000\000\002\000" >>bochs.img &&
	truncate -s 64k bochs.img &&
	qemu_probes_not_raw bochs.img &&
	refused bochs.img bochs &&
	printf "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=\$0 && mount -r -t iso9660 /dev/cloop \$1\n" >cloop.img &&
	truncate -s 64k cloop.img &&
	qemu_probes_not_raw cloop.img &&
	refused cloop.img cloop &&
	printf "  \n# by hand\nversion=2\r\nCID=fffffffe\n" >desc.img &&
	truncate -s 64k desc.img &&
	qemu_probes_not_raw desc.img &&
	refused desc.img vmdk
'

# QEMU knows a dmg by its name alone (the koly trailer is read on open).
test_expect_success 'dmg: a .dmg name, as qemu-img probes it' '
	truncate -s 1M simple.dmg &&
	printf koly | dd of=simple.dmg bs=1 seek=$((1048576 - 512)) conv=notrunc 2>/dev/null &&
	qemu_probes_not_raw simple.dmg &&
	refused simple.dmg dmg &&
	cp simple.dmg simple.img &&
	qemu_probes_raw simple.img &&
	read_as_raw simple.img
'

# Near misses that qemu-img reads as raw disks: so do we.
test_expect_success 'near misses are raw, as for qemu-img' '
	printf "# Disk DescriptorFile\nCID=fffffffe\n" >nodesc.img &&
	printf "  version=1\n" >nodesc2.img &&
	printf "# Disk DescriptorFile\n\nversion=1\n" >nodesc3.img &&
	printf "Bochs Virtual HD Image" >nobochs.img &&
	printf "WithoutFreeSpace\001\000\000\000" >par1.img &&
	printf "#!/bin/sh\n#V2.0 Format\n" >nocloop.img &&
	for f in nodesc nodesc2 nodesc3 nobochs par1 nocloop; do
		truncate -s 64k $f.img &&
		qemu_probes_raw $f.img &&
		read_as_raw $f.img || return 1
	done
'

test_done
