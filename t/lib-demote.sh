# lib-demote.sh: helpers of the img-demote tests t/70NN-demote-*.sh, sourced after lib.sh.

# demote_features IMG [ARGS...]: img-demote --list --output=json of IMG, one
# line per feature: "NAME CLASS removable|fixed ENTRIES BYTES GROWTH".
demote_features() {
	df_img_=$1
	shift
	img-demote --list --output=json "$@" "$df_img_" >"$df_img_.list.json" &&
	perl -MJSON::PP -e '
		local $/;
		my $d = JSON::PP->new->decode(<STDIN>);
		for my $f (@{$d->{features}}) {
			printf "%s %s %s %d %d %d\n", $f->{name}, $f->{class},
				$f->{removable} ? "removable" : "fixed",
				$f->{entries}, $f->{bytes}, $f->{growth};
		}' <"$df_img_.list.json"
}

# demoted_clean IMG REF [COMPAT]: img-check and qemu-img check find nothing
# (no error, no leak), IMG reads as REF (qemu-img compare), and for qcow2
# qemu-img info says compat COMPAT (default 0.10).
demoted_clean() {
	test_expect_code 0 img-check "$1" >/dev/null &&
	test_expect_code 0 qemu-img check "$1" >/dev/null &&
	qemu-img compare -q "$2" "$1" || return 1
	case $(qemu-img info "$1" | sed -n "s/^file format: //p") in
	qcow2) dc_compat_=$(qemu-img info --output=json "$1" |
		perl -MJSON::PP -e 'local $/; print JSON::PP->new->decode(<STDIN>)->{"format-specific"}{data}{compat}') &&
	       test "$dc_compat_" = "${3:-0.10}" ||
		{ echo >&2 "$1: compat $dc_compat_, not ${3:-0.10}"; return 1; } ;;
	esac
}

# demote_survives_kills IMAGE REF [COMPAT]: img-demote on a copy of IMAGE
# killed (IMG_FAULT_MODE=kill) at its 1st, 2nd, ... write until it
# finishes. After each kill the image opens, both checks find leaks at
# worst, it reads as REF, and a rerun leaves it demoted and clean. The run
# not killed must leave it so too; at least three kills must happen.
demote_survives_kills() {
	dsk_n_=1
	while :; do
		cp "$1" kill.img || return 1
		IMG_FAULT_WRITE=$dsk_n_ IMG_FAULT_MODE=kill \
			img-demote -q kill.img 2>/dev/null
		dsk_code_=$?
		test "$dsk_code_" = 137 || break
		fault_consistent kill.img ||
			{ echo >&2 "killed at write $dsk_n_: inconsistent"; return 1; }
		qemu-img compare -q "$2" kill.img ||
			{ echo >&2 "killed at write $dsk_n_: data changed"; return 1; }
		img-demote -q kill.img ||
			{ echo >&2 "killed at write $dsk_n_: rerun fails"; return 1; }
		demoted_clean kill.img "$2" "$3" ||
			{ echo >&2 "killed at write $dsk_n_: not clean after a rerun"; return 1; }
		dsk_n_=$((dsk_n_ + 1))
	done
	test "$dsk_code_" = 0 ||
		{ echo >&2 "run not killed at write $dsk_n_ exits $dsk_code_"; return 1; }
	echo >&2 "$1: killed at each of $((dsk_n_ - 1)) writes"
	test "$dsk_n_" -gt 3 || { echo >&2 "fewer than three kills"; return 1; }
	demoted_clean kill.img "$2" "$3"
}

# demote_survives_term IMAGE REF: img-demote on a copy of IMAGE is sent
# SIGTERM (IMG_FAULT_MODE=term) at its 1st, 2nd, ... write until it runs
# to the end. Each time it dies by SIGTERM (143) after the one line
# "img-demote: interrupted by SIGTERM: 'term.img' is consistent; run
# img-demote again to finish", the image checks clean but for leaks and
# reads as REF, and a rerun leaves it demoted and clean.
demote_survives_term() {
	dst_n_=1
	while :; do
		cp "$1" term.img &&
		( exec env IMG_FAULT_WRITE=$dst_n_ IMG_FAULT_MODE=term \
			img-demote -q term.img ) >/dev/null 2>term.err
		dst_rc_=$?
		test $dst_rc_ = 0 && break
		test $dst_rc_ = 143 ||
			{ echo >&2 "write $dst_n_: exit $dst_rc_"; cat >&2 term.err; return 1; }
		echo "img-demote: interrupted by SIGTERM: 'term.img' is consistent; run img-demote again to finish" >term.expect &&
		tail -n 1 term.err >term.last &&
		test_cmp term.expect term.last &&
		fault_consistent term.img &&
		qemu-img compare -q "$2" term.img &&
		img-demote -q term.img &&
		demoted_clean term.img "$2" ||
		{ echo >&2 "interrupted at write $dst_n_"; return 1; }
		dst_n_=$((dst_n_ + 1))
	done
	echo >&2 "$1: interrupted at each of $((dst_n_ - 1)) writes"
	test $dst_n_ -gt 3 && demoted_clean term.img "$2"
}
