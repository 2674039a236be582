# lib.sh: test harness sourced by every t/NNNN-name.sh; prints TAP for prove.
#
# A test script looks like
#
#	#!/bin/sh
#	test_description='what this script covers'
#	. "$(dirname "$0")/lib.sh"
#	test_expect_success 'title' '
#		commands &&
#		more commands
#	'
#	test_done
#
# and runs from any directory (make check runs prove from the top).
# Each script gets a fresh trash directory t/trash.NNNN-name, its cwd while
# the tests run, removed when every test passed and kept otherwise.
#
# Options: -v (show command output), -x (trace commands; each test then
# runs in a subshell), -i (stop at the first failure), -d (keep the trash
# directory). IMG_TEST_OPTS adds options.
#
# Exit status and sanitizers. Our commands exit 0 on success, 1 on an error
# and 2 on a usage error; nothing of ours may die by a signal. Builds with
# D=1 carry ASan and UBSan; the options exported below make every sanitizer
# report abort() the process (exit 134, SIGABRT), and should an abort not
# happen anyway, exit with 125. test_must_fail therefore accepts only exit
# codes 1..124: 125 means a sanitizer report, 126/127 the shell could not
# run the command (a missing binary must not pass as "failed as expected"),
# and above 128 a signal.

# Where we are: the t/ directory and the source tree above it.
case "$0" in
*/*) TEST_DIRECTORY=$(cd "${0%/*}" && pwd) ;;
*) TEST_DIRECTORY=$(pwd) ;;
esac
SRC_ROOT=${TEST_DIRECTORY%/t}
this_test=${0##*/}
this_test=${this_test%.sh}
TRASH_DIRECTORY=$TEST_DIRECTORY/trash.$this_test

PATH=$SRC_ROOT/cmd:$TEST_DIRECTORY/helper:$PATH
export PATH

# Sanitizers: any report is fatal and never looks like an ordinary failure.
SAN_EXIT=125
ASAN_OPTIONS=abort_on_error=1:halt_on_error=1:exitcode=$SAN_EXIT:detect_leaks=1:allocator_may_return_null=1:print_summary=1
UBSAN_OPTIONS=abort_on_error=1:halt_on_error=1:exitcode=$SAN_EXIT:print_stacktrace=1
LSAN_OPTIONS=exitcode=$SAN_EXIT
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

# A stable environment for the commands and for qemu.
LC_ALL=C
LANG=C
TZ=UTC
export LC_ALL LANG TZ
unset IMG_FAULT_WRITE IMG_FAULT_MODE IMG_FAULT_READ

verbose=
immediate=
debug=
trace=
for opt in $IMG_TEST_OPTS "$@"; do
	case "$opt" in
	-v|--verbose) verbose=t ;;
	-i|--immediate) immediate=t ;;
	-d|--debug) debug=t ;;
	-x|--trace) trace=t ;;
	*) echo "error: unknown test option '$opt'" >&2; exit 1 ;;
	esac
done

test_count=0
test_failures=0
test_fixed=0
test_broken=0
test_prereqs=' '

# Where command output goes while a test runs: shown with -v, else kept in
# a log that a failing test prints as TAP diagnostics.
test_log=$TRASH_DIRECTORY.log

say_diag() {
	sed -e 's/^/# /' "$@"
}

# skip_all REASON: only when an external tool is genuinely missing.
skip_all() {
	echo "1..0 # SKIP $*"
	rm -f "$test_log"
	exit 0
}

test_set_prereq() {
	test_prereqs="$test_prereqs$1 "
}

test_have_prereq() {
	case "$test_prereqs" in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# Run the body of a test in this shell, so that variables carry over.
test_run_() {
	if test -n "$verbose"; then
		if test -n "$trace"; then
			(set -x; eval "$1") </dev/null
		else
			eval "$1" </dev/null
		fi
		return
	fi
	if test -n "$trace"; then
		(set -x; eval "$1") </dev/null >"$test_log" 2>&1
	else
		eval "$1" </dev/null >"$test_log" 2>&1
	fi
}

test_skip_() {
	test_count=$((test_count + 1))
	echo "ok $test_count # skip $1 (missing $2)"
}

test_report_failure_() {
	test_failures=$((test_failures + 1))
	echo "not ok $test_count - $1"
	printf '%s\n' "$2" | say_diag
	if test -z "$verbose" && test -s "$test_log"; then
		echo "# output:"
		say_diag "$test_log"
	fi
	if test -n "$immediate"; then
		echo "# stopping at the first failure (-i); trash kept in $TRASH_DIRECTORY"
		echo "1..$test_count"
		exit 1
	fi
}

# test_expect_success [PREREQ] 'title' 'commands'
test_expect_success() {
	if test $# = 3; then
		if ! test_have_prereq "$1"; then
			test_skip_ "$2" "$1"
			return 0
		fi
		shift
	fi
	test $# = 2 || { echo "bug in test script: test_expect_success needs 2 or 3 arguments" >&2; exit 1; }
	test_count=$((test_count + 1))
	if test_run_ "$2"; then
		echo "ok $test_count - $1"
	else
		test_report_failure_ "$1" "$2"
	fi
	return 0
}

# test_expect_failure [PREREQ] 'title' 'commands': a known breakage,
# reported as TODO so that it does not fail the script.
test_expect_failure() {
	if test $# = 3; then
		if ! test_have_prereq "$1"; then
			test_skip_ "$2" "$1"
			return 0
		fi
		shift
	fi
	test $# = 2 || { echo "bug in test script: test_expect_failure needs 2 or 3 arguments" >&2; exit 1; }
	test_count=$((test_count + 1))
	if test_run_ "$2"; then
		test_fixed=$((test_fixed + 1))
		echo "ok $test_count - $1 # TODO known breakage vanished"
	else
		test_broken=$((test_broken + 1))
		echo "not ok $test_count - $1 # TODO known breakage"
	fi
	return 0
}

test_done() {
	echo "1..$test_count"
	cd "$TEST_DIRECTORY" || exit 1
	if test "$test_failures" -gt 0; then
		echo "# failed $test_failures of $test_count; trash kept in $TRASH_DIRECTORY"
		rm -f "$test_log"
		exit 1
	fi
	test -n "$debug" || rm -rf "$TRASH_DIRECTORY"
	rm -f "$test_log"
	exit 0
}

# --- assertions --------------------------------------------------------

# test_must_fail CMD...: CMD must fail the ordinary way (exit 1..124); it
# must not succeed, die by a signal, report a sanitizer error (125) or be
# impossible to run (126, 127).
test_must_fail() {
	"$@"
	test_exit_code_=$?
	if test $test_exit_code_ = 0; then
		echo >&2 "test_must_fail: command succeeded: $*"
		return 1
	elif test $test_exit_code_ -gt 128; then
		echo >&2 "test_must_fail: killed by signal $((test_exit_code_ - 128)): $*"
		return 1
	elif test $test_exit_code_ = $SAN_EXIT; then
		echo >&2 "test_must_fail: sanitizer report: $*"
		return 1
	elif test $test_exit_code_ -ge 126; then
		echo >&2 "test_must_fail: cannot run (exit $test_exit_code_): $*"
		return 1
	fi
	return 0
}

# test_expect_code N CMD...: CMD must exit with exactly N.
test_expect_code() {
	test_want_code_=$1
	shift
	"$@"
	test_exit_code_=$?
	if test $test_exit_code_ = "$test_want_code_"; then
		return 0
	fi
	echo >&2 "test_expect_code: exit $test_exit_code_, wanted $test_want_code_: $*"
	return 1
}

test_cmp() {
	diff -u "$@"
}

# one_line FILE TEXT: FILE holds exactly the line TEXT.
one_line() {
	printf '%s\n' "$2" >one_line.expect &&
	test_cmp one_line.expect "$1"
}

# test_line_count OP N FILE, e.g. test_line_count = 1 err
test_line_count() {
	test_lines_=$(wc -l <"$3")
	test "$test_lines_" "$1" "$2" && return 0
	echo >&2 "test_line_count: $3 has $test_lines_ lines, wanted $1 $2:"
	cat >&2 "$3"
	return 1
}

# no_sanitizer_report FILE: FILE (a captured stderr) holds no sanitizer text.
no_sanitizer_report() {
	if grep -E 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$1" >&2; then
		echo >&2 "sanitizer report in $1"
		return 1
	fi
	return 0
}

# --- corpus helpers ----------------------------------------------------

# qemu_img_pbkdf ARGS...: qemu-img ARGS, for a command that derives a LUKS
# key. qemu-img times its PBKDF by the thread's CPU clock and gives up
# ("Unable to get accurate CPU usage") when a tick-based clock reads no time
# passing, about one run in ten here; only that error is retried.
qemu_img_pbkdf() {
	for qp_try_ in 1 2 3 4 5 6 7 8 9 10; do
		qemu-img "$@" 2>qp.err && return 0
		grep -q "Unable to get accurate CPU usage" qp.err || break
	done
	cat >&2 qp.err
	return 1
}

# qio FMT IMAGE 'qemu-io command'...: run qemu-io commands on an image.
qio() {
	qio_fmt_=$1
	qio_img_=$2
	shift 2
	# Turn the commands into "-c c1 -c c2 ..." without splitting them.
	set -- "$@" --
	while test "$1" != --; do
		set -- "$@" -c "$1"
		shift
	done
	shift
	qemu-io -f "$qio_fmt_" "$@" "$qio_img_" >/dev/null
}

# qio_aes FMT IMAGE PASSWORD 'command'...: qemu-io on an AES-encrypted image.
qio_aes() {
	qio_fmt_=$1
	qio_img_=$2
	qio_pw_=$3
	shift 3
	set -- "$@" --
	while test "$1" != --; do
		set -- "$@" -c "$1"
		shift
	done
	shift
	qemu-io --object "secret,id=sec0,data=$qio_pw_" \
		--image-opts "driver=$qio_fmt_,file.filename=$qio_img_,encrypt.key-secret=sec0" \
		"$@" >/dev/null
}

# qio_crash FMT IMAGE 'command'...: qemu-io commands, then qemu-io's
# "abort", leaving the image as a crash would (dirty bit, need-check).
qio_crash() {
	( ulimit -c 0; qio "$@" abort 2>/dev/null )
	test $? -gt 128
}

# write_key FILE PASSWORD: a key file as --key-file reads it.
write_key() {
	printf '%s\n' "$2" >"$1"
}

# Option parsing shared by map_same, raw_same and info_same:
#   [-f FMT] [--key PASSWORD] IMAGE
# sets same_fmt_, same_key_, same_img_ and
# our_opts_ (for img-*) and qemu_src_ (options plus image for qemu-img).
same_parse_() {
	same_fmt_=
	same_key_=
	while test $# -gt 1; do
		case "$1" in
		-f) same_fmt_=$2; shift 2 ;;
		--key) same_key_=$2; shift 2 ;;
		*) echo >&2 "bug in test script: bad option $1"; return 1 ;;
		esac
	done
	same_img_=$1
	our_opts_=
	test -z "$same_fmt_" || our_opts_="-f $same_fmt_"
	if test -n "$same_key_"; then
		test -n "$same_fmt_" ||
			same_fmt_=$(qemu-img info --output=json "$same_img_" |
				    sed -n 's/^    "format": "\(.*\)",*$/\1/p')
		write_key .key "$same_key_" || return 1
		our_opts_="$our_opts_ --key-file .key"
		qemu_src_="--object secret,id=sec0,data=$same_key_ --image-opts driver=$same_fmt_,file.filename=$same_img_,encrypt.key-secret=sec0"
	elif test -n "$same_fmt_"; then
		qemu_src_="-f $same_fmt_ $same_img_"
	else
		qemu_src_=$same_img_
	fi
}

# map_normalise < JSON: qemu-img map --output=json (ours or QEMU's) to one
# canonical line per extent, after merging neighbours that agree on every
# field and whose offsets (if any) are contiguous.
map_normalise() {
	perl -MJSON::PP -e '
		$SIG{__DIE__} = sub { return if $^S; print STDERR @_; exit 1 };
		local $/;
		my $text = <STDIN>;
		my $list = eval { JSON::PP->new->decode($text) };
		die "map_normalise: not a JSON array: $@\n" if ref $list ne "ARRAY";
		my (@out, $prev);
		my $key = sub {
			my $e = shift;
			join ",", map { "$_=" . (JSON::PP::is_bool($e->{$_}) ?
				($e->{$_} ? "true" : "false") : $e->{$_}) }
			    grep { $_ ne "start" && $_ ne "length" && $_ ne "offset" }
			    sort keys %$e;
		};
		# An empty extent (QEMU prints one for an empty image) says
		# nothing; nor does a host offset for a range that no layer
		# allocates (QEMU 7.2 gives one for the unallocated subclusters
		# of an allocated extended-L2 cluster).
		for my $e (sort { $a->{start} <=> $b->{start} }
			   grep { $_->{length} } @$list) {
			delete $e->{offset} if JSON::PP::is_bool($e->{present}) &&
					       !$e->{present};
			if ($prev && $prev->{start} + $prev->{length} == $e->{start} &&
			    $key->($prev) eq $key->($e) &&
			    (defined $prev->{offset}) == (defined $e->{offset}) &&
			    (!defined $e->{offset} ||
			     $prev->{offset} + $prev->{length} == $e->{offset})) {
				$prev->{length} += $e->{length};
				next;
			}
			push @out, $prev if $prev;
			$prev = { %$e };
		}
		push @out, $prev if $prev;
		for my $e (@out) {
			printf "start=%d length=%d %s%s\n", $e->{start},
			    $e->{length}, $key->($e),
			    defined $e->{offset} ? " offset=$e->{offset}" : "";
		}
	'
}

# map_is_maximal < JSON: no two neighbouring extents could be one (same
# fields, contiguous offsets), as img-map promises; lists the pairs that
# could and fails if there are any.
map_is_maximal() {
	perl -MJSON::PP -e '
		$SIG{__DIE__} = sub { return if $^S; print STDERR @_; exit 1 };
		local $/;
		my $list = JSON::PP->new->decode(<STDIN>);
		my $key = sub {
			my $e = shift;
			join ",", map { "$_=" . (JSON::PP::is_bool($e->{$_}) ?
				($e->{$_} ? "true" : "false") : $e->{$_}) }
			    grep { $_ ne "start" && $_ ne "length" && $_ ne "offset" }
			    sort keys %$e;
		};
		my ($prev, $bad) = (undef, 0);
		for my $e (@$list) {
			if ($prev && $prev->{start} + $prev->{length} == $e->{start} &&
			    $key->($prev) eq $key->($e) &&
			    (defined $prev->{offset}) == (defined $e->{offset}) &&
			    (!defined $e->{offset} ||
			     $prev->{offset} + $prev->{length} == $e->{offset})) {
				print STDERR "mergeable extents at $prev->{start} and $e->{start}\n";
				$bad = 1;
			}
			$prev = $e;
		}
		exit $bad;
	'
}

# map_same [-f FMT] [--key PW] IMAGE: img-map --output=json means what
# qemu-img map --output=json says, and merges extents maximally.
map_same() {
	same_parse_ "$@" || return 1
	# shellcheck disable=SC2086
	qemu-img map --output=json $qemu_src_ >map.qemu.json || return 1
	# shellcheck disable=SC2086
	img-map --output=json $our_opts_ "$same_img_" >map.ours.json || return 1
	map_normalise <map.qemu.json >map.qemu.norm &&
	map_normalise <map.ours.json >map.ours.norm &&
	test_cmp map.qemu.norm map.ours.norm &&
	map_is_maximal <map.ours.json
}

# raw_same [-f FMT] [--key PW] IMAGE: our raw export equals qemu-img's.
raw_same() {
	same_parse_ "$@" || return 1
	rm -f raw.qemu raw.ours
	# shellcheck disable=SC2086
	qemu-img convert -O raw $qemu_src_ raw.qemu || return 1
	# shellcheck disable=SC2086
	img-convert -O raw $our_opts_ "$same_img_" raw.ours || return 1
	cmp raw.qemu raw.ours
}

# both_same [-f FMT] [--key PW] IMAGE: raw_same and map_same (both run,
# so that a failure shows everything that differs).
both_same() {
	both_raw_=0
	raw_same "$@" || both_raw_=1
	map_same "$@" && test $both_raw_ = 0
}

# json_get FILE PATH...: print "PATH=VALUE" for each PATH, a dotted path
# into the JSON in FILE ("format-specific.data.compat", "0.format",
# "snapshots.1.name"); an absent field prints "PATH=<absent>". Booleans
# print as true/false, nested values as canonical JSON.
json_get() {
	perl -MJSON::PP -e '
		$SIG{__DIE__} = sub { return if $^S; print STDERR @_; exit 1 };
		local $/;
		open my $fh, "<", shift @ARGV or die "json_get: $!\n";
		my $doc = JSON::PP->new->decode(<$fh>);
		my $js = JSON::PP->new->canonical;
		for my $path (@ARGV) {
			my $v = $doc;
			for my $k (split /\./, $path) {
				if (ref $v eq "ARRAY" && $k =~ /^\d+$/) {
					$v = $k < @$v ? $v->[$k] : undef;
				} elsif (ref $v eq "HASH" && exists $v->{$k}) {
					$v = $v->{$k};
				} else {
					$v = undef;
				}
				last unless defined $v;
			}
			my $s = !defined $v ? "<absent>" :
				JSON::PP::is_bool($v) ? ($v ? "true" : "false") :
				ref $v ? $js->encode($v) : $v;
			print "$path=$s\n";
		}
	' "$@"
}

# open_fails CMD IMAGE [ARGS...]: CMD (img-map, img-info, img-convert)
# fails on IMAGE with exit 1 and one line on stderr that starts with the
# command's name and names the image in quotes, with no sanitizer report.
# Extra ARGS go before the image (e.g. -f qcow2).
open_fails() {
	of_cmd_=$1
	of_img_=$2
	shift 2
	rm -f of.err of.out
	case "$of_cmd_" in
	img-convert) test_expect_code 1 img-convert -O raw "$@" "$of_img_" of.out 2>of.err ;;
	*) test_expect_code 1 "$of_cmd_" "$@" "$of_img_" >/dev/null 2>of.err ;;
	esac || { cat of.err >&2; return 1; }
	cat of.err >&2
	no_sanitizer_report of.err &&
	test_line_count = 1 of.err &&
	grep -F "$of_cmd_: " of.err >/dev/null &&
	grep -F "'$of_img_'" of.err >/dev/null &&
	case "$(cat of.err)" in
	"$of_cmd_: "*) ;;
	*) echo >&2 "message does not start with '$of_cmd_: '"; false ;;
	esac
}

# damage SRC DST OFFSET TYPE VALUE...: DST is a copy of SRC with img-poke
# writes applied (OFFSET TYPE VALUE triples).
damage() {
	dmg_dst_=$2
	cp "$1" "$dmg_dst_" || return 1
	shift 2
	while test $# -ge 3; do
		img-poke "$dmg_dst_" "$1" "$2" "$3" || return 1
		shift 3
	done
	test $# = 0
}

# all_fail IMAGE [ARGS...]: open_fails for img-map, img-info and img-convert.
all_fail() {
	open_fails img-map "$@" &&
	open_fails img-info "$@" &&
	open_fails img-convert "$@"
}

# --- repair crash safety ------------------------------------------------

# repair_survives_kills [--verdict CMD] [--reads CMD] IMAGE REF MODE:
# proves that killing img-check -r MODE at any write never loses data nor
# leaves an image that a second repair cannot fix. On a fresh copy of
# IMAGE, kill.img, the repair is killed (IMG_FAULT_MODE=kill, exit 137) at
# its 1st, 2nd, ... write until it runs to the end. After each kill:
# kill.img opens (img-info exits 0, img-check 0, 2 or 3) and reads as REF
# (qemu-img compare), or passes "CMD kill.img" with --reads where parts of
# IMAGE were unreadable; then a second img-check -r MODE exits 0 and
# kill.img is clean. The run that was not killed must exit 0 and leave
# kill.img clean; at least two kills must have happened. Clean means:
# img-check exits 0, "CMD kill.img" of --verdict (a format's own check,
# e.g. qemu-img check) succeeds, and kill.img reads as REF.
repair_survives_kills() {
	rsk_verdict_=
	rsk_reads_=
	while test $# -gt 3; do
		case "$1" in
		--verdict) rsk_verdict_=$2; shift 2 ;;
		--reads) rsk_reads_=$2; shift 2 ;;
		*) echo >&2 "bug in test script: bad option $1"; return 1 ;;
		esac
	done
	test $# = 3 || { echo >&2 "bug in test script: repair_survives_kills IMAGE REF MODE"; return 1; }
	rsk_n_=1
	while :; do
		cp "$1" kill.img || return 1
		IMG_FAULT_WRITE=$rsk_n_ IMG_FAULT_MODE=kill \
			img-check -q -r "$3" kill.img 2>/dev/null
		rsk_code_=$?
		test "$rsk_code_" = 137 || break
		rsk_opens_ "$rsk_n_" || return 1
		# shellcheck disable=SC2086
		if test -n "$rsk_reads_"; then
			$rsk_reads_ kill.img
		else
			qemu-img compare -q "$2" kill.img
		fi || { echo >&2 "killed at write $rsk_n_: data changed"; return 1; }
		img-check -q -r "$3" kill.img || {
			echo >&2 "killed at write $rsk_n_: second repair exits $?"
			return 1
		}
		rsk_clean_ "$2" "$rsk_verdict_" ||
			{ echo >&2 "killed at write $rsk_n_: not clean after a second repair"; return 1; }
		rsk_n_=$((rsk_n_ + 1))
	done
	test "$rsk_code_" = 0 ||
		{ echo >&2 "repair not killed at write $rsk_n_ exits $rsk_code_"; return 1; }
	echo >&2 "$1 -r $3: killed at each of $((rsk_n_ - 1)) writes"
	test "$rsk_n_" -gt 2 || { echo >&2 "fewer than two kills"; return 1; }
	rsk_clean_ "$2" "$rsk_verdict_" ||
		{ echo >&2 "not clean after the repair that was not killed"; return 1; }
}

# rsk_opens_ N: kill.img, killed at write N, still opens and can be checked.
rsk_opens_() {
	img-info kill.img >/dev/null ||
		{ echo >&2 "killed at write $1: img-info fails"; return 1; }
	img-check -q kill.img 2>/dev/null
	rsk_check_=$?
	case $rsk_check_ in
	0|2|3) return 0 ;;
	esac
	echo >&2 "killed at write $1: img-check exits $rsk_check_"
	return 1
}

# rsk_clean_ REF [VERDICT]: kill.img is clean and reads as REF.
# VERDICT is a command and its arguments, hence split.
# shellcheck disable=SC2086
rsk_clean_() {
	test_expect_code 0 img-check kill.img >/dev/null &&
	{ test -z "$2" || $2 kill.img; } &&
	qemu-img compare -q "$1" kill.img
}

# --- setup ---------------------------------------------------------------

# Test the commands of this tree, never installed ones that happen to be in
# PATH. A script that needs none sets test_no_commands before sourcing us.
if test -z "$test_no_commands"; then
	for cmd_ in img-map img-info img-convert; do
		if ! test -x "$SRC_ROOT/cmd/$cmd_"; then
			echo "Bail out! $SRC_ROOT/cmd/$cmd_ is not built (run make)"
			exit 1
		fi
	done
	test -x "$TEST_DIRECTORY/helper/img-poke" || {
		echo "Bail out! $TEST_DIRECTORY/helper/img-poke is not built (run make)"
		exit 1
	}
fi

command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	skip_all 'qemu-img and qemu-io (qemu-utils) are not installed'
command -v perl >/dev/null && perl -MJSON::PP -e 1 2>/dev/null ||
	skip_all 'perl with JSON::PP is not installed'

rm -rf "$TRASH_DIRECTORY" &&
mkdir -p "$TRASH_DIRECTORY" &&
cd "$TRASH_DIRECTORY" || {
	echo "Bail out! cannot create $TRASH_DIRECTORY"
	exit 1
}

# ---- img-compact -----------------------------------------------------------

# zero_fill RAW CHUNKS [UNIT]: RAW made of UNIT-byte chunks (default 64 KiB),
# one per character of CHUNKS: d = random data, 0 = zeros.
zero_fill() {
	printf "%s\n" "$2" | fold -w1 | while read -r zf_c_; do
		if test "$zf_c_" = d; then
			head -c "${3:-65536}" /dev/urandom
		else
			head -c "${3:-65536}" /dev/zero
		fi
	done >"$1"
}

# compact_clean IMG REF: img-check finds nothing, nor does qemu-img check
# (which cannot check qcow v1), and IMG reads as REF.
compact_clean() {
	test_expect_code 0 img-check "$1" >/dev/null || return 1
	qemu-img check "$1" >/dev/null 2>&1
	cc_code_=$?
	test "$cc_code_" = 0 ||
		{ test "$cc_code_" = 63 && test "$(qemu-img info "$1" | sed -n "s/^file format: //p")" = qcow; } ||
		{ echo >&2 "qemu-img check $1 exits $cc_code_"; return 1; }
	qemu-img compare -q "$2" "$1"
}

# compact_counts IMG ARGS...: img-compact's JSON report for IMG in IMG.json,
# its counts as lines in IMG.counts.
COMPACT_COUNTS='clusters-scanned zero-clusters clusters-freed clusters-kept leaks bytes-freed'
compact_counts() {
	ccn_img_=$1
	shift
	img-compact --output=json "$@" "$ccn_img_" >"$ccn_img_.json" \
		2>"$ccn_img_.err" &&
	no_sanitizer_report "$ccn_img_.err" &&
	# shellcheck disable=SC2086
	json_get "$ccn_img_.json" $COMPACT_COUNTS >"$ccn_img_.counts"
}

# compact_survives_kills IMAGE REF: img-compact on a copy of IMAGE killed at
# its 1st, 2nd, ... write until it finishes. After each kill the image
# opens, checks without errors, reads as REF, and a rerun leaves it clean
# and smaller than IMAGE.
compact_survives_kills() {
	csk_n_=1
	while :; do
		cp "$1" kill.img || return 1
		IMG_FAULT_WRITE=$csk_n_ IMG_FAULT_MODE=kill \
			img-compact -q kill.img 2>/dev/null
		csk_code_=$?
		test "$csk_code_" = 137 || break
		img-info kill.img >/dev/null ||
			{ echo >&2 "killed at write $csk_n_: img-info fails"; return 1; }
		img-check -q kill.img 2>/dev/null
		case $? in
		0|3) ;;
		*) echo >&2 "killed at write $csk_n_: img-check finds errors"; return 1 ;;
		esac
		qemu-img compare -q "$2" kill.img ||
			{ echo >&2 "killed at write $csk_n_: data changed"; return 1; }
		img-compact -q kill.img ||
			{ echo >&2 "killed at write $csk_n_: rerun fails"; return 1; }
		compact_clean kill.img "$2" &&
		test "$(stat -c %s kill.img)" -lt "$(stat -c %s "$1")" ||
			{ echo >&2 "killed at write $csk_n_: not clean and compact after a rerun"; return 1; }
		csk_n_=$((csk_n_ + 1))
	done
	test "$csk_code_" = 0 ||
		{ echo >&2 "run not killed at write $csk_n_ exits $csk_code_"; return 1; }
	echo >&2 "$1: killed at each of $((csk_n_ - 1)) writes"
	test "$csk_n_" -gt 3 || { echo >&2 "fewer than three kills"; return 1; }
	compact_clean kill.img "$2" &&
	test "$(stat -c %s kill.img)" -lt "$(stat -c %s "$1")"
}

# ---- failed reads, failed and short writes, full disks ----------------------
#
# The fault backend (lib/io_fault.c) reads IMG_FAULT_READ=N (the Nth read
# fails with EIO, and every later one), IMG_FAULT_WRITE=N (the Nth write,
# truncate or punch fails, and every later one) and IMG_FAULT_MODE (how a
# write fails: eio, the default; enospc; short, half the Nth write stored
# then ENOSPC, as on a disk that fills up; kill and term, a signal; stop,
# SIGSTOP before the Nth write, failing nothing).

# fault_state IMG: img-check's and qemu-img check's exit codes on IMG
# ("raw" when $fault_raw_ is set: raw has no metadata to check).
fault_state() {
	if test -n "$fault_raw_"; then
		echo raw
		return
	fi
	img-check -q "$1" 2>/dev/null
	fs_ours_=$?
	qemu-img check -q "$1" >/dev/null 2>&1
	echo "$fs_ours_ $?"
}

# fault_consistent IMG: IMG opens, and img-check and qemu-img check find
# at most leaks (qemu-img cannot check qcow v1: 63).
fault_consistent() {
	img-info "$1" >/dev/null || { echo >&2 "img-info fails"; return 1; }
	fc_state_=$(fault_state "$1")
	case $fc_state_ in
	raw|"0 0"|"0 3"|"3 0"|"3 3"|"0 63"|"3 63") ;;
	*) echo >&2 "checks find errors: $fc_state_"
	   img-check "$1" >&2
	   return 1 ;;
	esac
}

# fault_env KIND N: the environment that makes the Nth I/O fail: KIND is
# read, eio, enospc or short.
fault_env() {
	case $1 in
	read) echo "IMG_FAULT_READ=$2" ;;
	*) echo "IMG_FAULT_WRITE=$2 IMG_FAULT_MODE=$1" ;;
	esac
}

# fault_run_ KIND N CMD...: CMD with its Nth read or write failing; exit code
# in fa_code_, stderr in fa.err.
fault_run_() {
	fa_env_=$(fault_env "$1" "$2")
	shift 2
	# shellcheck disable=SC2086
	env $fa_env_ "$@" >/dev/null 2>fa.err
	fa_code_=$?
}

# fault_count_ KIND CMD...: how many reads (KIND read) or writes CMD does on a
# fresh f.img: the least N at which a fault is not hit, less one; found by
# doubling then bisecting. Expects CMD to work on f.img copied from $ci_img_.
fault_count_() {
	ci_kind_=$1
	shift
	ci_lo_=0
	ci_hi_=1
	while :; do
		cp "$ci_img_" f.img || return 1
		fault_run_ "$ci_kind_" $ci_hi_ "$@"
		test $fa_code_ = 0 && break
		ci_lo_=$ci_hi_
		ci_hi_=$((ci_hi_ * 2))
		test $ci_hi_ -lt 1000000 || return 1
	done
	# faults at lo are hit, at hi not
	while test $((ci_hi_ - ci_lo_)) -gt 1; do
		ci_mid_=$(((ci_lo_ + ci_hi_) / 2))
		cp "$ci_img_" f.img || return 1
		fault_run_ "$ci_kind_" $ci_mid_ "$@"
		if test $fa_code_ = 0; then ci_hi_=$ci_mid_; else ci_lo_=$ci_mid_; fi
	done
	echo $ci_lo_
}

# survives_faults KIND IMAGE REF CMD...: CMD (whose last argument is f.img) run on
# a copy f.img of IMAGE with its Nth read or write failing (KIND), for N
# from 1 to its last I/O in about 6 steps (the first and last always).
# Each run exits 1, its last line on stderr (the only one starting with
# the command's name: img-check reports problems above it) names a file
# in quotes; f.img is then consistent, and reads as before unless CMD is
# a conversion; CMD rerun without a fault exits 0 and leaves f.img in the
# state a run without faults leaves it (clean, or with the leaks a
# conversion leaves in qcow), reading as REF.
survives_faults() {
	sv_kind_=$1
	sv_img_=$2
	sv_ref_=$3
	shift 3
	fault_raw_=
	case $1 in
	img-convert) case " $* " in *" -O raw "*) fault_raw_=t ;; esac ;;
	esac
	cp "$sv_img_" f.img &&
	"$@" >/dev/null &&
	qemu-img compare -q "$sv_ref_" f.img &&
	sv_state_=$(fault_state f.img) || { echo >&2 "$*: fails without faults"; return 1; }
	ci_img_=$sv_img_
	sv_total_=$(fault_count_ "$sv_kind_" "$@") || return 1
	test "$sv_total_" -ge 1 || { echo >&2 "$*: no $sv_kind_ fault hit"; return 1; }
	sv_step_=$(((sv_total_ + 4) / 5))
	sv_n_=1
	sv_runs_=0
	while test $sv_n_ -le $sv_total_; do
		cp "$sv_img_" f.img || return 1
		case $1 in
		img-convert) ;;
		*) qemu-img convert -O raw f.img before.raw || return 1 ;;
		esac
		fault_run_ "$sv_kind_" $sv_n_ "$@"
		sv_at_="$sv_kind_ fault at $sv_n_ of $sv_total_"
		cat fa.err >&2
		test $fa_code_ = 1 ||
			{ echo >&2 "$*: $sv_at_: exit $fa_code_"; return 1; }
		no_sanitizer_report fa.err &&
		grep "^$1: " fa.err >fa.cmd &&
		test_line_count = 1 fa.cmd &&
		tail -n 1 fa.err | grep "^$1: .*'[^']*'" >/dev/null ||
			{ echo >&2 "$*: $sv_at_: no last line naming a file"; return 1; }
		fault_consistent f.img ||
			{ echo >&2 "$*: $sv_at_: inconsistent"; return 1; }
		case $1 in
		img-convert) ;;
		*) qemu-img compare -q before.raw f.img ||
			{ echo >&2 "$*: $sv_at_: data changed"; return 1; } ;;
		esac
		"$@" >/dev/null ||
			{ echo >&2 "$*: $sv_at_: the rerun fails"; return 1; }
		test "$(fault_state f.img)" = "$sv_state_" &&
		qemu-img compare -q "$sv_ref_" f.img ||
			{ echo >&2 "$*: $sv_at_: not as after a run without faults"; return 1; }
		sv_runs_=$((sv_runs_ + 1))
		if test $sv_n_ -lt $sv_total_ && test $((sv_n_ + sv_step_)) -gt $sv_total_; then
			sv_n_=$sv_total_
		else
			sv_n_=$((sv_n_ + sv_step_))
		fi
	done
	echo >&2 "$*: $sv_kind_ faults at $sv_runs_ of $sv_total_"
}

# check_report IMG CMD...: CMD's --output=json check report of IMG, its
# keys sorted on one line without the file name, then "exit=STATUS"; no
# sanitizer report on its stderr (kept in rp.err). Commands img-* run
# under $CHECK_REPORT_WRAP when set (a function name, e.g. a memory limit).
check_report() {
	rp_img_=$1
	shift
	case "$1" in
	img-*) $CHECK_REPORT_WRAP "$@" --output=json "$rp_img_" >rp.json 2>rp.err ;;
	*) "$@" --output=json "$rp_img_" >rp.json 2>rp.err ;;
	esac
	rp_code_=$?
	no_sanitizer_report rp.err &&
	perl -MJSON::PP -e '
		local $/;
		my $d = eval { JSON::PP->new->decode(<STDIN>) } || {};
		delete $d->{filename};
		print join(",", map { "$_=$d->{$_}" } sort keys %$d), "\n";
	' <rp.json &&
	echo "exit=$rp_code_"
}

# check_same_as_qemu IMG: img-check reports on IMG what qemu-img check
# reports (q.report, o.report), exit status included.
check_same_as_qemu() {
	check_report "$1" qemu-img check >q.report &&
	check_report "$1" img-check >o.report &&
	test_cmp q.report o.report
}

# memlimited CMD...: CMD under a 256 MiB address-space limit where one can
# be set (not under the sanitizers, which reserve far more): a header
# field is never a reason to allocate.
if ! strings "$SRC_ROOT/cmd/img-info" 2>/dev/null | grep -q __asan_init &&
   (ulimit -v 262144 && img-info --help) >/dev/null 2>&1; then
	test_set_prereq MEMLIMIT
fi
memlimited() {
	if test_have_prereq MEMLIMIT; then
		(ulimit -v 262144 && "$@")
	else
		"$@"
	fi
}
