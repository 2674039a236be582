#!/bin/sh
# demo.sh: the main job on a built-in example: a qcow image (over a raw base) converted to QED, a leak found and repaired, a zero-filled qcow2 compacted, checked against qemu-img.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
PATH="$top/cmd:$PATH"
dir=$(mktemp -d "${TMPDIR:-/tmp}/imgtools-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

# A sample: a raw base with some data and a qcow over it, both made by
# img-create; the guest writes into the qcow (data, and zeros over the
# base) come from qemu-io, standing in for a virtual machine.
run img-create -f raw base.raw 4M
dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\0' '\021' |
	dd of=base.raw conv=notrunc 2>/dev/null
run img-create -f qcow -b base.raw -F raw disk.qcow
qemu-io -f qcow -c 'write -q -P 0x22 512k 128k' -c 'write -q -P 0 0 64k' \
	-c 'write -q -P 0x33 2M 64k' disk.qcow >/dev/null

run img-info disk.qcow
run img-map disk.qcow

# The main job: qcow to QED, a whole disk...
run img-convert -p -O qed disk.qcow disk.qed
run img-map disk.qed
run qemu-img check -q disk.qed
run qemu-img compare disk.qcow disk.qed

# ...or only what the qcow adds to its base, which stays the backing file.
run img-convert -O qed -B base.raw -F raw disk.qcow child.qed
run img-map child.qed
run qemu-img compare disk.qcow child.qed

# An interrupted writer can leave space nothing references: img-check
# finds it, and with -r leaks gives it back, crash-safely.
head -c 65536 /dev/urandom >>disk.qed
run img-check disk.qed || echo "(exit status $?: leaks only)"
run img-check -r leaks disk.qed
run qemu-img check disk.qed
run qemu-img compare disk.qcow disk.qed

# Every format's bytes are the guest's: the raw export equals qemu-img's.
run img-convert -O raw disk.qed disk.raw
qemu-img convert -O raw disk.qcow qemu.raw
run cmp disk.raw qemu.raw

# A guest zero-fills its free space: the zeros are stored, the file stays
# large. img-compact drops the zero clusters, moves clusters from the end
# down into the space they held and truncates the file, in place.
run img-create -f qcow2 vm.qcow2 8M
qemu-io -f qcow2 -c 'write -q -P 0x44 0 6M' vm.qcow2 >/dev/null
qemu-io -f qcow2 -c 'write -q -P 0 1M 3M' vm.qcow2 >/dev/null
cp vm.qcow2 vm-before.qcow2
run wc -c vm.qcow2
run img-compact vm.qcow2
run wc -c vm.qcow2
run qemu-img check vm.qcow2
run qemu-img compare vm-before.qcow2 vm.qcow2

# An older reader refuses a qcow2 v3 image (zero clusters, lazy
# refcounts, a bitmap...): img-demote lists what it uses and what removing
# each costs, then makes it compat 0.10 in place, same guest data.
run img-create -f qcow2 -o lazy_refcounts=on new.qcow2 8M
qemu-io -f qcow2 -c 'write -q -P 0x55 0 2M' -c 'write -q -z 1M 512k' new.qcow2 >/dev/null
qemu-img bitmap --add new.qcow2 backup0
cp new.qcow2 new-before.qcow2
run img-demote --list new.qcow2
run img-demote new.qcow2
run qemu-img info new.qcow2
run qemu-img check new.qcow2
run qemu-img compare new-before.qcow2 new.qcow2
echo "demo: qcow converted to QED, a leak found and repaired, a zero-filled qcow2"
echo "compacted, a qcow2 v3 demoted to compat 0.10; qemu-img agrees"
