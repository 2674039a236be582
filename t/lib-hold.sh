# lib-hold.sh: for lock tests (sourced after lib.sh): a qemu-io process holding an image open, as a running VM would, and a look at /proc/locks.

# held_on FILE BYTE: some open file description holds a lock on byte BYTE
# of FILE (as /proc/locks lists them: "... MAJ:MIN:INODE START END").
held_on() {
	ho_ino_=$(stat -c %i "$1") || return 1
	awk -v ino="$ho_ino_" -v b="$2" '
		{
			for (i = 1; i + 2 <= NF; i++)
				if ($i ~ (":" ino "$")) {
					e = $(i + 2) == "EOF" ? 1e18 : $(i + 2)
					if ($(i + 1) + 0 <= b && b <= e + 0)
						found = 1
				}
		}
		END { exit !found }' /proc/locks
}

# hold IMAGE [QEMU-IO OPTIONS...]: a qemu-io process keeps IMAGE open (read
# and write unless -r is given), reading its commands from a FIFO until
# unhold. Returns once it holds its lock bytes (byte 100: consistent read).
hold() {
	hold_img_=$1
	shift
	rm -f hold.fifo && mkfifo hold.fifo || return 1
	qemu-io "$@" "$hold_img_" <hold.fifo >hold.out 2>&1 &
	hold_pid_=$!
	exec 9>hold.fifo
	hold_n_=0
	until held_on "$hold_img_" 100; do
		if ! kill -0 "$hold_pid_" 2>/dev/null; then
			echo >&2 "qemu-io on $hold_img_ ended:"
			cat >&2 hold.out
			return 1
		fi
		hold_n_=$((hold_n_ + 1))
		test $hold_n_ -lt 600 ||
			{ echo >&2 "qemu-io took no lock on $hold_img_"; return 1; }
		sleep 0.05
	done
}

# unhold: end of input for qemu-io, which exits; wait for it.
unhold() {
	exec 9>&-
	wait "$hold_pid_"
}
