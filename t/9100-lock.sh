#!/bin/sh
# 9100-lock.sh: image locking compatible with QEMU's: our commands and real qemu-io/qemu-img processes see each other, both ways; -U; backing and data files.
test_description='image locks shared with QEMU'
. "$(dirname "$0")/lib.sh"

test -r /proc/locks || skip_all 'no /proc/locks to see when a lock is taken'

. "$TEST_DIRECTORY/lib-hold.sh"

# stop_at_write CMD...: run CMD in the background, the fault backend
# stopping it (SIGSTOP) just before its first write (STOP_AT: its Nth),
# with its files open and locked; returns once it is stopped.
stop_at_write() {
	IMG_FAULT_WRITE=${STOP_AT:-1} IMG_FAULT_MODE=stop "$@" \
		>stopped.out 2>stopped.err &
	stopped_pid_=$!
	saw_n_=0
	while :; do
		saw_state_=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' \
			"/proc/$stopped_pid_/stat" 2>/dev/null)
		test "$saw_state_" = T && return 0
		if ! kill -0 "$stopped_pid_" 2>/dev/null; then
			echo >&2 "$* ended before its first write:"
			cat >&2 stopped.err
			return 1
		fi
		saw_n_=$((saw_n_ + 1))
		test $saw_n_ -lt 600 ||
			{ echo >&2 "$* did not stop"; return 1; }
		sleep 0.05
	done
}

# resume: let the stopped command go on; its exit status.
resume() {
	kill -CONT "$stopped_pid_"
	wait "$stopped_pid_"
}

# refused_locked CMD IMAGE ARGS...: CMD ARGS IMAGE exits 1 with exactly
# the line saying that IMAGE is in use.
refused_locked() {
	rl_cmd_=$1
	rl_img_=$2
	shift 2
	test_expect_code 1 "$rl_cmd_" "$@" "$rl_img_" >rl.out 2>rl.err
	rl_code_=$?
	cat rl.err
	test $rl_code_ = 0 &&
	echo "$rl_cmd_: cannot lock '$rl_img_': in use by another process (is a VM running?)" >rl.expect &&
	test_cmp rl.expect rl.err
}

# same_verdict 'OUR COMMAND' 'QEMU-IMG COMMAND': both succeed or both fail
# (exit 1, never a signal or a sanitizer report).
same_verdict() {
	$1 >sv.ours 2>sv.ours.err
	sv_ours_=$?
	$2 >sv.qemu 2>sv.qemu.err
	sv_qemu_=$?
	cat sv.ours.err
	test $sv_ours_ -lt 124 && no_sanitizer_report sv.ours.err || return 1
	if test $sv_ours_ = 0 && test $sv_qemu_ = 0; then
		return 0
	fi
	if test $sv_ours_ = 1 && test $sv_qemu_ != 0; then
		return 0
	fi
	echo >&2 "'$1' exits $sv_ours_, '$2' exits $sv_qemu_:"
	cat >&2 sv.qemu.err
	return 1
}

# x.qcow2: 1 MiB of zeros stored as data (img-compact frees them), 64 KiB
# of data, and one leaked cluster (img-check -r leaks gives it back).
test_expect_success 'setup' '
	qemu-img create -q -f qcow2 x.qcow2 16M &&
	qio qcow2 x.qcow2 "write -P 0 0 1M" "write -P 0x5a 1M 64k" &&
	size=$(stat -c %s x.qcow2) &&
	truncate -s $((size + 65536)) x.qcow2 &&
	img-poke x.qcow2 $((0x20000 + size / 65536 * 2)) be16 1 &&
	test_expect_code 3 img-check x.qcow2 >out &&
	grep "^1 leaked clusters" out &&
	img-compact -n x.qcow2 >out &&
	grep -Fx "Zero clusters to free: 16" out &&
	cp x.qcow2 orig.qcow2 &&
	qemu-img create -q -f qcow2 src.qcow2 16M &&
	qio qcow2 src.qcow2 "write -P 0x33 0 256k"
'

test_expect_success 'while qemu-io writes: img-check -r and img-compact refuse, one line, nothing written' '
	hold x.qcow2 &&
	{
		refused_locked img-check x.qcow2 -r leaks &&
		refused_locked img-check x.qcow2 -r all &&
		refused_locked img-compact x.qcow2 &&
		refused_locked img-compact x.qcow2 --dry-run &&
		refused_locked img-convert x.qcow2 -n -O qcow2 src.qcow2
	}
	ret=$?
	unhold
	test $ret = 0 &&
	cmp orig.qcow2 x.qcow2
'

test_expect_success 'while qemu-io writes: the read-only commands refuse where qemu-img does' '
	hold x.qcow2 &&
	{
		same_verdict "img-info x.qcow2" "qemu-img info x.qcow2" &&
		same_verdict "img-map x.qcow2" "qemu-img map x.qcow2" &&
		same_verdict "img-check x.qcow2" "qemu-img check x.qcow2" &&
		same_verdict "img-convert -O raw x.qcow2 out.raw" \
			"qemu-img convert -O raw x.qcow2 out.raw" &&
		refused_locked img-info x.qcow2 &&
		refused_locked img-map x.qcow2 &&
		refused_locked img-check x.qcow2
	}
	ret=$?
	unhold
	test $ret = 0
'

test_expect_success 'while qemu-io writes: -U lets the read-only commands through, as qemu-img -U' '
	hold x.qcow2 &&
	{
		img-info -U x.qcow2 >info.out &&
		grep -Fx "image: x.qcow2" info.out &&
		qemu-img info -U x.qcow2 >/dev/null &&
		img-map -U --output=json x.qcow2 >map.out &&
		qemu-img map -U x.qcow2 >/dev/null &&
		test_expect_code 3 img-check -U x.qcow2 >/dev/null &&
		img-convert -U -O raw x.qcow2 u.raw &&
		img-compact -U --dry-run x.qcow2 >/dev/null
	}
	ret=$?
	unhold
	test $ret = 0 &&
	qemu-img compare -f raw u.raw orig.qcow2
'

test_expect_success '-U with a command that writes is a usage error, nothing written' '
	test_expect_code 2 img-check -U -r leaks x.qcow2 2>err &&
	grep -F "img-check: -U (--force-share) cannot be used with -r" err &&
	test_expect_code 2 img-compact --force-share x.qcow2 2>err &&
	grep -F "img-compact: -U (--force-share) cannot be used without --dry-run" err &&
	cmp orig.qcow2 x.qcow2
'

test_expect_success 'while qemu-io reads (-r): our readers go on, our writers refuse, as qemu-img' '
	hold x.qcow2 -r &&
	{
		same_verdict "img-info x.qcow2" "qemu-img info x.qcow2" &&
		same_verdict "img-map x.qcow2" "qemu-img map x.qcow2" &&
		img-map x.qcow2 >/dev/null &&
		same_verdict "img-check -r leaks x.qcow2" \
			"qemu-img check -r leaks x.qcow2" &&
		refused_locked img-check x.qcow2 -r leaks &&
		refused_locked img-compact x.qcow2
	}
	ret=$?
	unhold
	test $ret = 0 &&
	cmp orig.qcow2 x.qcow2
'

test_expect_success 'while img-compact works: qemu-img and qemu-io fail to get their locks, img-check too' '
	cp orig.qcow2 c.qcow2 &&
	stop_at_write img-compact c.qcow2 &&
	{
		test_must_fail qemu-img info c.qcow2 2>err &&
		grep -F "Failed to get shared \"write\" lock" err &&
		test_must_fail qemu-img map c.qcow2 2>err &&
		grep -F "Failed to get \"consistent read\" lock" err &&
		test_must_fail qemu-io -r -c "read 0 512" c.qcow2 2>err &&
		grep -F "Failed to get \"consistent read\" lock" err &&
		test_must_fail qemu-io -c "write 0 512" c.qcow2 2>err &&
		grep -F "Failed to get" err &&
		qemu-img info -U c.qcow2 >/dev/null &&
		refused_locked img-check c.qcow2 &&
		refused_locked img-check c.qcow2 -r leaks &&
		refused_locked img-map c.qcow2 -U
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	compact_clean c.qcow2 orig.qcow2 &&
	test "$(stat -c %s c.qcow2)" -lt "$(stat -c %s orig.qcow2)"
'

test_expect_success 'while img-check -r leaks works: qemu-img and img-compact refuse' '
	cp orig.qcow2 c.qcow2 &&
	stop_at_write img-check -r leaks c.qcow2 &&
	{
		test_must_fail qemu-img check c.qcow2 2>err &&
		grep -F "Failed to get \"consistent read\" lock" err &&
		test_must_fail qemu-io -c "write 0 512" c.qcow2 2>err &&
		grep -F "Failed to get" err &&
		refused_locked img-compact c.qcow2 &&
		refused_locked img-info c.qcow2
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	test_expect_code 0 img-check c.qcow2 &&
	qemu-img compare orig.qcow2 c.qcow2
'

# base.qcow2: data in its first 64 KiB. child.qcow2 (v2, no zero clusters)
# stores zeros over it and over zeros: compacting must read base.qcow2.
test_expect_success 'setup: a chain' '
	qemu-img create -q -f qcow2 base.qcow2 1M &&
	qio qcow2 base.qcow2 "write -P 0x11 0 64k" &&
	qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 \
		child.qcow2 &&
	qio qcow2 child.qcow2 "write -P 0 0 128k" &&
	cp child.qcow2 child0.qcow2
'

test_expect_success 'while qemu-io writes a backing file: reading the chain refused, naming it; -U reads' '
	hold base.qcow2 &&
	{
		same_verdict "img-map child.qcow2" "qemu-img map child.qcow2" &&
		test_expect_code 1 img-map child.qcow2 2>err &&
		echo "img-map: cannot open '\''child.qcow2'\'': backing file '\''base.qcow2'\'': in use by another process (is a VM running?)" >expect &&
		test_cmp expect err &&
		test_expect_code 1 img-convert -O raw child.qcow2 out.raw 2>err &&
		grep -F "backing file '\''base.qcow2'\'': in use by another process" err &&
		test_line_count = 1 err &&
		test_expect_code 1 img-info --backing-chain child.qcow2 2>err &&
		grep -F "backing file '\''base.qcow2'\'': in use" err &&
		img-info child.qcow2 >/dev/null &&
		img-map -U child.qcow2 >/dev/null &&
		img-convert -U -O raw child.qcow2 u.raw
	}
	ret=$?
	unhold
	test $ret = 0 &&
	qemu-img compare -f raw u.raw child.qcow2
'

test_expect_success 'while qemu-io writes a backing file: compaction that reads it refuses, nothing written' '
	hold base.qcow2 &&
	{
		test_expect_code 1 img-compact child.qcow2 2>err &&
		cat err &&
		test_line_count = 1 err &&
		grep -F "backing file '\''base.qcow2'\'': in use by another process (is a VM running?)" err &&
		img-check -r leaks child.qcow2
	}
	ret=$?
	unhold
	test $ret = 0 &&
	cmp child0.qcow2 child.qcow2
'

test_expect_success 'while qemu-io only reads a backing file: compaction over it goes on' '
	hold base.qcow2 -r &&
	{
		img-compact child.qcow2 >out
	}
	ret=$?
	unhold
	test $ret = 0 &&
	grep -Fx "Zero clusters kept: 1" out &&
	compact_clean child.qcow2 child0.qcow2
'

test_expect_success 'while we read a chain: qemu-io cannot write the backing file, may read it' '
	stop_at_write img-convert -O qcow2 child0.qcow2 conv.qcow2 &&
	{
		test_must_fail qemu-io -c "write 0 512" base.qcow2 2>err &&
		grep -F "Failed to get \"write\" lock" err &&
		qemu-io -r -c "read 0 512" base.qcow2 >/dev/null
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	qemu-img compare child0.qcow2 conv.qcow2
'

# As qemu-img convert's source, what img-convert copies may not change
# while it reads: a raw image, an external data file or a raw backing file
# another process writes is refused; img-map (which shares writes, as
# qemu-img map does) reads it, and so does img-convert -U.
test_expect_success 'while qemu-io writes a raw image, a data file, a raw backing file: img-convert refuses, as qemu-img convert' '
	qemu-img create -q -f raw w.raw 1M &&
	qemu-img create -q -f qcow2 -o data_file=wd.raw wd.qcow2 1M &&
	qemu-img create -q -f raw wb.raw 1M &&
	qemu-img create -q -f qcow2 -b wb.raw -F raw wo.qcow2 &&
	for held in "w.raw -f raw w.raw" "wd.raw wd.qcow2" "wb.raw wo.qcow2"; do
		set -- $held &&
		h=$1 &&
		shift &&
		hold $h -f raw &&
		{
			same_verdict "img-convert -O raw $* out.raw" \
				"qemu-img convert -O raw $* qout.raw" &&
			test_expect_code 1 img-convert -O raw "$@" out.raw 2>err &&
			grep -F "'\''$h'\'': in use by another process (is a VM running?)" err &&
			! test -e out.raw &&
			same_verdict "img-map $*" "qemu-img map $*" &&
			img-convert -U -O raw "$@" out.raw
		}
		ret=$?
		unhold
		test $ret = 0 &&
		rm out.raw || return 1
	done
'

test_expect_success 'img-create -b over a backing file a VM writes: works, as qemu-img create' '
	hold base.qcow2 &&
	{
		img-create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 &&
		qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over2.qcow2
	}
	ret=$?
	unhold
	test $ret = 0
'

test_expect_success 'img-convert -n: a target a VM holds is refused; its data file is locked while written' '
	qemu-img create -q -f qcow2 -o data_file=d.raw dd.qcow2 16M &&
	hold dd.qcow2 -r &&
	{
		refused_locked img-convert dd.qcow2 -n -O qcow2 src.qcow2
	}
	ret=$?
	unhold
	test $ret = 0 &&
	stop_at_write img-convert -n -O qcow2 src.qcow2 dd.qcow2 &&
	{
		test_must_fail qemu-io -f raw -r -c "read 0 512" d.raw 2>err &&
		grep -F "Failed to get \"consistent read\" lock" err
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	qemu-img compare src.qcow2 dd.qcow2
'

test_expect_success 'img-convert -n -O raw: a raw target another process reads is refused, nothing written' '
	truncate -s 16M t.raw &&
	hold t.raw -f raw -r &&
	{
		refused_locked img-convert t.raw -n -O raw src.qcow2
	}
	ret=$?
	unhold
	test $ret = 0 &&
	test "$(stat -c %b t.raw)" = 0 &&
	stop_at_write img-convert -n -O raw src.qcow2 t.raw &&
	{
		test_must_fail qemu-io -f raw -r -c "read 0 512" t.raw 2>err &&
		grep -F "Failed to get \"consistent read\" lock" err
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	qemu-img compare -F raw src.qcow2 t.raw
'

# Without OFD locks (an old kernel: t/helper/no-ofd-locks.so makes those
# fcntl commands fail with EINVAL), QEMU's locking=auto takes no locks at
# all, and so do we: the commands work, hold no lock bytes and refuse
# nobody. (The shim is not sanitized: ASan must not insist on loading
# first.)
# (env, not a shell function: stop_at_write needs the command's own pid.)
no_ofd="env LD_PRELOAD=$SRC_ROOT/t/helper/no-ofd-locks.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

test_expect_success 'no OFD locks: commands run unlocked, as qemu-img with locking=auto' '
	qemu-img create -q -f qcow2 nl.qcow2 16M &&
	qio qcow2 nl.qcow2 "write -P 0 0 1M" "write -P 0x5a 1M 64k" &&
	cp nl.qcow2 nl-orig.qcow2 &&
	$no_ofd img-info nl.qcow2 >/dev/null &&
	$no_ofd img-check nl.qcow2 >/dev/null &&
	STOP_AT=1 stop_at_write $no_ofd img-compact nl.qcow2 &&
	{
		! held_on nl.qcow2 100 && ! held_on nl.qcow2 201 &&
		qemu-img info nl.qcow2 >/dev/null
	}
	ret=$?
	resume &&
	test $ret = 0 &&
	qemu-img check -q nl.qcow2 &&
	qemu-img compare -q nl-orig.qcow2 nl.qcow2 &&
	hold nl.qcow2 &&
	{
		refused_locked img-compact nl.qcow2 &&
		$no_ofd img-check nl.qcow2 >/dev/null
	}
	ret=$?
	unhold
	test $ret = 0
'

test_done
