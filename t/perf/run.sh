#!/bin/bash
# run.sh: times img-convert, img-map and img-check against qemu-img on a deterministic corpus, side by side (make bench).
#
# Usage: t/perf/run.sh            (or: make bench, which builds first)
#
# Jobs (each checked for correctness before it is timed; see t/perf/README):
#   convert-FMT, convert-qcow2-zlib   img-convert -O raw from qcow2, qcow, QED,
#                         compressed qcow2; output cmp'ed with qemu-img's.
#   convert-SRC-DST       img-convert -f SRC -O DST: qcow-qed (the main job),
#                         qcow2-qed, qed-qcow2, raw-qcow2, qcow-qcow2;
#   convert-c-qcow2, convert-c-qcow   the same with -c from the raw corpus.
#                         Our output must pass qemu-img check (not qcow v1)
#                         and qemu-img compare with corpus.raw.
#   map-FMT, map-sparse-FMT   img-map --output=json vs qemu-img map.
#   check-qcow2-4k, check-qcow2, check-qed, check-zlib   img-check -f FMT
#                         --output=json vs qemu-img check (read-only) on
#                         corpus-4k.qcow2 (4 KiB clusters), corpus.qcow2,
#                         corpus.qed, corpus-zlib.qcow2: both must exit 0 and
#                         report the same counts (errors, leaks, corruptions,
#                         clusters, image end offset).
#   Bars (listed under the table when missed, not FAIL): our peak RSS under
#   64 MiB on every convert job, convert-qcow-qed at least 5x qemu-img,
#   check-qcow2-4k no slower than qemu-img (ratio >= 1).
#
# Knobs (environment variables):
#   IMG_PERF_SIZE=2G      size of the raw corpus; a whole number of MiB, with
#                         an M, G or T suffix. 256M or 64M for a quick try.
#   IMG_PERF_DIR=DIR      work directory (default t/perf/work, gitignored). It
#                         keeps the corpus, the derived images, the stamp, the
#                         logs and the results between runs.
#   IMG_PERF_RUNS=3       minimum timed runs per command, after one warm-up
#                         (hyperfine runs fast commands more often, to fill 3 s;
#                         no warm-up when a convert's check run took >= 2 s).
#   IMG_PERF_SLOW=20      a convert command whose check run took this many
#                         seconds or more is not run again: that run is its
#                         time (marked * in the table). Bounds machine time.
#   IMG_PERF_JOBS='...'   space-separated shell patterns choosing jobs, e.g.
#                         'map-*', 'convert-*-qed convert-c-*' or
#                         'convert-qcow2 map-sparse-*' (default: all).
#   IMG_PERF_SPARSE=4T    virtual size of the sparse qcow2 and QED images.
#   IMG_PERF_VERIFY=1     re-hash the corpus before reusing it; otherwise the
#                         stamp is checked against each file's size and mtime.
#   IMG_PERF_STAT=mean    which hyperfine statistic the table shows: mean,
#                         median or min (on a busy machine, min is steadier).
#   IMG_PERF_VERBOSE=1    show hyperfine's own output (else it goes to DIR/log/).
#   IMG_PERF_NO_INSTALL=1 never try to apt-get install hyperfine or time.
#   IMG_PERF_CONVERT, IMG_PERF_MAP, IMG_PERF_CHECK  our commands to measure
#                         (default: the built cmd/img-convert, cmd/img-map and
#                         cmd/img-check), e.g. an installed or an older build.
#
# Exit status: 0 when every selected job's output was right (equal to
# qemu-img's, or checked and identical to the corpus; for check jobs, both
# clean with the same counts), 1 when a row is marked
# FAIL (the table is printed in full either way) or on setup errors (missing
# tools, corpus generation failed). A missed bar does not change it.
#
# Needs qemu-img and qemu-io (qemu-utils), a C compiler, perl; uses hyperfine
# and GNU time when present (installed with apt-get when missing and allowed),
# else best-of-N timing and t/perf/maxrss.c. Disk: about 4x the corpus
# size at peak (2G corpus: ~9 GiB; each job's outputs are deleted after it).
# See t/perf/README for reading the table.

set -u
export LC_ALL=C LANG=C TZ=UTC

top=$(cd "$(dirname "$0")/../.." && pwd)
perf=$top/t/perf
W=${IMG_PERF_DIR:-$perf/work}
RUNS=${IMG_PERF_RUNS:-3}
SIZE=${IMG_PERF_SIZE:-2G}
SPARSE=${IMG_PERF_SPARSE:-4T}
JOBS=${IMG_PERF_JOBS:-*}
VERBOSE=${IMG_PERF_VERBOSE:-}
STAT=${IMG_PERF_STAT:-mean}
SLOW=${IMG_PERF_SLOW:-20}
OURS_CONVERT=${IMG_PERF_CONVERT:-$top/cmd/img-convert}
OURS_MAP=${IMG_PERF_MAP:-$top/cmd/img-map}
OURS_CHECK=${IMG_PERF_CHECK:-$top/cmd/img-check}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# Size with an M/G/T suffix to MiB.
to_mib() {
	local n=${1%[MmGgTt]} u=${1#"${1%[MmGgTt]}"}
	case "$n" in ''|*[!0-9]*) return 1 ;; esac
	case "$u" in
	M|m) echo "$n" ;;
	G|g) echo $((n * 1024)) ;;
	T|t) echo $((n * 1024 * 1024)) ;;
	'') [ $((n % 1048576)) = 0 ] && echo $((n / 1048576)) ;;
	esac
}
MIB=$(to_mib "$SIZE") && [ "$MIB" -gt 0 ] 2>/dev/null ||
	die "IMG_PERF_SIZE '$SIZE' is not a whole number of MiB (e.g. 256M, 2G)"
SPARSE_MIB=$(to_mib "$SPARSE") && [ "$SPARSE_MIB" -gt 0 ] 2>/dev/null ||
	die "IMG_PERF_SPARSE '$SPARSE' is not a whole number of MiB (e.g. 4T)"
case "$RUNS" in ''|*[!0-9]*|0) die "IMG_PERF_RUNS '$RUNS' is not a positive number" ;; esac
case "$STAT" in mean|median|min) ;; *) die "IMG_PERF_STAT '$STAT' is not mean, median or min" ;; esac
case "$SLOW" in ''|*[!0-9]*) die "IMG_PERF_SLOW '$SLOW' is not a whole number of seconds" ;; esac

# Tools.
for t in qemu-img qemu-io perl; do
	command -v "$t" >/dev/null || die "'$t' not found (make deps installs qemu-utils and perl)"
done
OURS_CONVERT=$(command -v "$OURS_CONVERT") ||
	die "'${IMG_PERF_CONVERT:-cmd/img-convert}' not found; run make (or make bench)"
OURS_MAP=$(command -v "$OURS_MAP") ||
	die "'${IMG_PERF_MAP:-cmd/img-map}' not found; run make (or make bench)"
OURS_CHECK=$(command -v "$OURS_CHECK") ||
	die "'${IMG_PERF_CHECK:-cmd/img-check}' not found; run make (or make bench)"
CC=${CC:-cc}
command -v "$CC" >/dev/null || die "no C compiler '$CC' for t/perf/gen.c"

apt_install() {
	[ -z "${IMG_PERF_NO_INSTALL:-}" ] && command -v apt-get >/dev/null || return 1
	local sudo=
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
		sudo='sudo -n'
	fi
	say "installing $*"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 ||
	{ $sudo apt-get update -qq >/dev/null 2>&1 &&
	  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1; }
}
command -v hyperfine >/dev/null || apt_install hyperfine ||
	say "hyperfine not available: falling back to best-of-$RUNS timing"
HYPERFINE=$(command -v hyperfine || true)
gnu_time() { [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; }
gnu_time || apt_install time || true
if gnu_time; then
	RSS_TOOL=time
else
	RSS_TOOL=maxrss		# t/perf/maxrss.c, built below
fi

mkdir -p "$W" "$W/log" "$W/json" || die "cannot create work directory '$W'"
W=$(cd "$W" && pwd)

# Outputs of the jobs; removed between runs and on exit.
OUT_OURS=$W/out.ours
OUT_QEMU=$W/out.qemu
cleanup() { rm -f "$OUT_OURS".* "$OUT_QEMU".* "$W"/.out.ours.* "$W"/rss.*; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
cleanup

# --- Corpus and derived images -------------------------------------------

# Measure a snapshot of our commands: other people rebuilding cmd/ while
# the benchmark runs must not swap binaries under it.
mkdir -p "$W/bin" && cp -f "$OURS_CONVERT" "$W/bin/img-convert" &&
	cp -f "$OURS_MAP" "$W/bin/img-map" && cp -f "$OURS_CHECK" "$W/bin/img-check" ||
	die "cannot copy our commands to '$W/bin'"
OURS_CONVERT=$W/bin/img-convert
OURS_MAP=$W/bin/img-map
OURS_CHECK=$W/bin/img-check
"$OURS_CONVERT" --help >/dev/null 2>&1 && "$OURS_MAP" --help >/dev/null 2>&1 &&
	"$OURS_CHECK" --help >/dev/null 2>&1 ||
	die "the copies of our commands in '$W/bin' do not run (a rebuild in progress?)"
TREE=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)

GEN=$W/gen
if [ ! -x "$GEN" ] || [ "$perf/gen.c" -nt "$GEN" ]; then
	$CC -std=gnu11 -O2 -o "$GEN" "$perf/gen.c" || die "cannot build t/perf/gen.c"
fi
if [ "$RSS_TOOL" = maxrss ] && { [ ! -x "$W/maxrss" ] || [ "$perf/maxrss.c" -nt "$W/maxrss" ]; }; then
	$CC -std=gnu11 -O2 -o "$W/maxrss" "$perf/maxrss.c" || die "cannot build t/perf/maxrss.c"
fi

CORPUS=$W/corpus.raw
IMAGES="corpus.raw corpus.qcow2 corpus.qcow corpus.qed corpus-zlib.qcow2 sparse.qcow2 sparse.qed"
# Images added later, derived from corpus.raw by qemu-img convert with these
# options; each has its own stamp line, so a work directory that lacks one
# gets just that image made, not the whole corpus again.
EXTRAS="corpus-4k.qcow2"
extra_recipe() {
	case "$1" in
	corpus-4k.qcow2) echo "-O qcow2 -o cluster_size=4096" ;;
	*) return 1 ;;
	esac
}

# The sparse images: 32 writes (every eighth a zero write) of 64k..256k at
# scattered, deterministic offsets; about 4.5 MiB of data.
sparse_cmds() {
	awk -v slots=$((SPARSE_MIB * 16)) 'BEGIN {
		split("64k 128k 256k 192k", len, " ")
		for (i = 1; i <= 32; i++) {
			s = (i * 2654435761 + i * i * 40503) % (slots - 8)
			if (i % 8 == 0)
				printf "write -q -z %.0f %s\n", s * 65536, len[i % 4 + 1]
			else
				printf "write -q -P %d %.0f %s\n", i * 7 % 255 + 1, s * 65536, len[i % 4 + 1]
		}
	}'
}

stamp_head() {
	printf 'imgtools perf corpus v1\nsize_mib %s\nsparse_mib %s\n' "$MIB" "$SPARSE_MIB"
	printf 'gen %s\n' "$(cksum < "$perf/gen.c")"
	printf 'sparse %s\n' "$(sparse_cmds | cksum)"
	printf 'qemu %s\n' "$(qemu-img --version | head -n1)"
}
stamp_files() {
	local f
	for f in $IMAGES; do printf 'file %s %s\n' "$f" "$(stat -c '%s %Y' "$W/$f")"; done
}

# extra_stamp NAME: the stamp line of an extra image: its recipe, size, mtime.
extra_stamp() {
	printf 'extra %s %s: %s\n' "$1" "$(stat -c '%s %Y' "$W/$1")" "$(extra_recipe "$1")"
}

corpus_ok() {
	[ -f "$W/stamp" ] || return 1
	local f
	for f in $IMAGES; do [ -f "$W/$f" ] || return 1; done
	[ "$(grep -v -e '^hash ' -e '^extra ' "$W/stamp")" = "$(stamp_head; stamp_files)" ] || return 1
	if [ -n "${IMG_PERF_VERIFY:-}" ]; then
		say "verifying the corpus hash"
		[ "hash $("$GEN" --hash "$CORPUS")" = "$(grep '^hash ' "$W/stamp")" ] || return 1
	fi
}

build_corpus() {
	local f h t0
	rm -f "$W/stamp"
	for f in $IMAGES $EXTRAS; do rm -f "$W/$f"; done
	t0=$SECONDS
	say "generating a ${MIB} MiB raw corpus in $W"
	h=$("$GEN" "$MIB" "$CORPUS") || die "corpus generation failed"
	say "corpus written in $((SECONDS - t0)) s"
	say "deriving qcow2, qcow, QED and compressed qcow2 with qemu-img"
	qemu-img convert -f raw -O qcow2 "$CORPUS" "$W/corpus.qcow2" &&
	qemu-img convert -f raw -O qcow "$CORPUS" "$W/corpus.qcow" &&
	qemu-img convert -f raw -O qed "$CORPUS" "$W/corpus.qed" &&
	qemu-img convert -c -f raw -O qcow2 "$CORPUS" "$W/corpus-zlib.qcow2" ||
		die "qemu-img convert failed while deriving the images"
	say "making ${SPARSE} sparse qcow2 and QED images"
	local fmt args=()
	while IFS= read -r f; do args+=(-c "$f"); done < <(sparse_cmds)
	for fmt in qcow2 qed; do
		qemu-img create -q -f $fmt "$W/sparse.$fmt" "${SPARSE_MIB}M" &&
		qemu-io -f $fmt "${args[@]}" "$W/sparse.$fmt" >/dev/null ||
			die "cannot make sparse.$fmt"
	done
	{ stamp_head; stamp_files; printf 'hash %s\n' "$h"; } > "$W/stamp"
	say "corpus ready in $((SECONDS - t0)) s"
}

# make_extras: each extra image that is missing or does not match its stamp
# line is made from corpus.raw and their lines replaced in the stamp.
make_extras() {
	local f line t0 recipe
	for f in $EXTRAS; do
		if [ -f "$W/$f" ]; then
			line=$(extra_stamp "$f")
			grep -qxF -- "$line" "$W/stamp" && continue
		fi
		recipe=$(extra_recipe "$f")
		say "deriving $f with qemu-img convert $recipe"
		t0=$SECONDS
		rm -f "$W/$f"
		# shellcheck disable=SC2086 # the recipe is a list of options
		qemu-img convert -f raw $recipe "$CORPUS" "$W/$f" ||
			die "qemu-img convert failed while deriving $f"
		{ grep -v "^extra $f " "$W/stamp"; extra_stamp "$f"; } > "$W/stamp.new" &&
			mv -f "$W/stamp.new" "$W/stamp" || die "cannot update $W/stamp"
		say "$f ready in $((SECONDS - t0)) s"
	done
}

if corpus_ok; then
	say "reusing the ${MIB} MiB corpus in $W (stamp matches)"
else
	build_corpus
fi
make_extras

# --- Measuring -----------------------------------------------------------

# rss FILE CMD...: run CMD, write its peak RSS in KiB to FILE, return its status.
rss() {
	local f=$1; shift
	case "$RSS_TOOL" in
	time)
		/usr/bin/time -f %M -o "$f.t" "$@"
		local rc=$?
		tail -n1 "$f.t" > "$f"; rm -f "$f.t"
		return $rc ;;
	*)
		"$W/maxrss" "$f" "$@" ;;
	esac
}

# secs T: seconds for the table; four decimals below 0.1 s, else three.
secs() {
	case "$1" in -|'') echo - ;; *) awk -v t="$1" 'BEGIN {
		if (t < 0.1) printf "%.4f", t; else printf "%.3f", t }' ;; esac
}

kib_to_mib() {
	case "$1" in ''|*[!0-9]*) echo - ;; *) awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' ;; esac
}

# qword STRING: STRING quoted for sh -c (hyperfine runs commands with sh).
qword() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }
qcmd() { local a s=; for a in "$@"; do s="$s${s:+ }$(qword "$a")"; done; printf %s "$s"; }

# time_pair JOB PREPARE OURS_CMD QEMU_CMD WARMUP [IGNORE]: mean seconds of each
# command (or best of RUNS without hyperfine) after WARMUP (0 or 1) warm-up
# runs, on stdout as "ours qemu"; an empty command is not timed and prints "-".
# IGNORE non-empty: a command's non-zero exit does not stop the timing.
time_pair() {
	local job=$1 prep=$2 ours=$3 qemu=$4 warmup=$5 ignore=${6:-}
	local log=$W/log/$job.txt json=$W/json/$job.json
	[ -n "$ours$qemu" ] || { echo "- -"; return 0; }
	if [ -n "$HYPERFINE" ]; then
		# -N: no shell in between, so millisecond jobs need no correction;
		# hyperfine discards the commands' output itself.
		local args=(-N --warmup "$warmup" --min-runs "$RUNS" --style basic --export-json "$json")
		[ -n "$ignore" ] && args+=(-i)
		[ -n "$prep" ] && args+=(--prepare "$prep")
		[ -n "$ours" ] && args+=(-n ours "$ours")
		[ -n "$qemu" ] && args+=(-n qemu-img "$qemu")
		if [ -n "$VERBOSE" ]; then
			"$HYPERFINE" "${args[@]}" >&2
		else
			"$HYPERFINE" "${args[@]}" > "$log" 2>&1
		fi || { echo "- -"; return 1; }
		perl -MJSON::PP -e '
			local $/; open my $f, "<", $ARGV[0] or die; my $j = decode_json(<$f>);
			my %m = map { $_->{command} => sprintf("%.6f", $_->{$ARGV[1]}) } @{$j->{results}};
			print(($m{ours} // "-"), " ", ($m{"qemu-img"} // "-"), "\n");' "$json" "$STAT"
	else
		local o=- q=-
		[ -n "$ours" ] && o=$(best_of "$prep" "$ours" "$warmup")
		[ -n "$qemu" ] && q=$(best_of "$prep" "$qemu" "$warmup")
		echo "$o $q"
	fi
}

now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
best_of() {
	local prep=$1 cmd=$2 warmup=$3 i t0 t1 best=
	for i in $(seq $((1 - warmup)) "$RUNS"); do
		[ -n "$prep" ] && sh -c "$prep"
		t0=$(now); sh -c "$cmd" >/dev/null 2>&1; t1=$(now)
		[ "$i" = 0 ] && continue	# warm-up
		best=$(awk -v a="$t0" -v b="$t1" -v m="$best" 'BEGIN {
			d = b - a; if (m == "" || d < m + 0) m = d; printf "%.6f", m }')
	done
	echo "$best"
}

selected() {
	local p -
	set -f	# the patterns are for the job names, not for files
	for p in $JOBS; do
		# shellcheck disable=SC2053
		[[ $1 == $p ]] && return 0
	done
	return 1
}

ROWS=()
NOTES=()
add_row() { ROWS+=("$(printf '%s\t' "$@")"); }

# elapsed T0: seconds since T0 (from now).
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# at_least A B: A >= B, as numbers.
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# note_from JOB FILE: a note with the line of FILE that says what went wrong
# (or its first line).
note_from() {
	local l
	l=$(grep -m1 -iE 'error|leak|corrupt|mismatch|differ|cannot|fail' "$2" 2>/dev/null) ||
		l=$(grep -m1 . "$2" 2>/dev/null)
	[ -n "$l" ] && NOTES+=("$1: $l")
}

# verify_image JOB FORMAT FILE: set VSTATUS to ok when FILE passes qemu-img
# check (qcow v1 has none) and qemu-img compare finds it identical to the raw
# corpus, the content every source image was derived from.
verify_image() {
	local job=$1 ofmt=$2 out=$3 rc log
	VSTATUS=ok
	if [ "$ofmt" != qcow ]; then
		log=$W/log/$job.check.txt
		qemu-img check -f "$ofmt" "$out" > "$log" 2>&1; rc=$?
		if [ $rc != 0 ]; then
			VSTATUS="FAIL(check exit $rc)"
			note_from "$job: qemu-img check" "$log"
			return
		fi
		rm -f "$log"
	fi
	log=$W/log/$job.compare.txt
	qemu-img compare -f raw -F "$ofmt" "$CORPUS" "$out" > "$log" 2>&1; rc=$?
	case $rc in
	0) rm -f "$log" ;;
	1) VSTATUS="FAIL(differs)"; note_from "$job: qemu-img compare" "$log" ;;
	*) VSTATUS="FAIL(compare exit $rc)"; note_from "$job: qemu-img compare" "$log" ;;
	esac
}

# CHECK_FIELDS: the counts of a --output=json check that must agree.
CHECK_FIELDS="check-errors leaks corruptions total-clusters allocated-clusters
fragmented-clusters compressed-clusters image-end-offset"

# check_counts_differ OURS.json QEMU.json: nothing when every CHECK_FIELDS
# count agrees (an absent field counts as 0), else a line naming those that
# differ, e.g. "leaks 0 vs qemu-img 3", or why a file could not be read.
check_counts_differ() {
	perl -MJSON::PP -e '
		my @j;
		for my $f (@ARGV[0, 1]) {
			my $t = do { local $/; open my $h, "<", $f or die; <$h> };
			my $d = eval { decode_json($t) };
			if (ref $d ne "HASH") {
				print((@j ? "qemu-img" : "our"), " output is not a JSON object\n");
				exit;
			}
			push @j, $d;
		}
		my @d;
		for my $k (split " ", $ARGV[2]) {
			my ($o, $q) = map { $_->{$k} // 0 } @j;
			push @d, "$k $o vs qemu-img $q" if $o ne $q;
		}
		print join(", ", @d), "\n" if @d;' "$1" "$2" "$CHECK_FIELDS"
}

# run_job JOB KIND FORMAT IMAGE [OUT_FORMAT [FLAG...]]: check once (and
# measure peak RSS), then time. KIND convert: img-convert [FLAG...] -f FORMAT
# -O OUT_FORMAT (default raw) against qemu-img convert with the same options;
# KIND map: img-map --output=json against qemu-img map; KIND check: img-check
# --output=json against qemu-img check (read-only), their counts compared.
run_job() {
	local job=$1 kind=$2 fmt=$3 img=$W/$4 ofmt=${5:-raw} flags=("${@:6}")
	local ours_a qemu_a status=ok rc qrc t0 tc_ours=0 tc_qemu=0 quirk=
	selected "$job" || return 0
	say "$job: checking"
	rm -f "$W/log/$job".*
	cleanup
	if [ "$kind" = convert ]; then
		ours_a=("$OURS_CONVERT" "${flags[@]}" -f "$fmt" -O "$ofmt" "$img" "$OUT_OURS.$ofmt")
		qemu_a=(qemu-img convert "${flags[@]}" -f "$fmt" -O "$ofmt" "$img" "$OUT_QEMU.$ofmt")
		t0=$(now)
		rss "$W/rss.ours" "${ours_a[@]}" 2> "$W/log/$job.ours.err"; rc=$?
		tc_ours=$(elapsed "$t0")
		VSTATUS=ok
		if [ "$ofmt" != raw ]; then
			# Verified on its own and deleted at once: one output on disk at a time.
			[ $rc = 0 ] && verify_image "$job" "$ofmt" "$OUT_OURS.$ofmt"
			rm -f "$OUT_OURS.$ofmt"
		fi
		t0=$(now)
		rss "$W/rss.qemu" "${qemu_a[@]}" 2> "$W/log/$job.qemu.err"; qrc=$?
		tc_qemu=$(elapsed "$t0")
		if [ $qrc = 1 ] && [ ! -s "$W/log/$job.qemu.err" ] && [ "$ofmt" = qcow ] &&
		   [[ " ${flags[*]} " == *" -c "* ]]; then
			# qemu-img 7.2 ends -c -O qcow with exit 1 and no message, its
			# qcow driver refusing the zero-length compressed write that
			# marks the end; accepted when its output is nevertheless right.
			local v=$VSTATUS
			verify_image "$job-qemu" qcow "$OUT_QEMU.qcow"
			if [ "$VSTATUS" = ok ]; then
				qrc=0 quirk=1
				NOTES+=("$job: qemu-img exited 1 without a message; its output compares identical, so it counts")
			fi
			VSTATUS=$v
		fi
		if [ $qrc != 0 ]; then status="FAIL(qemu-img exit $qrc)"
		elif [ $rc != 0 ]; then status="FAIL(exit $rc)"
		elif [ "$ofmt" != raw ]; then status=$VSTATUS
		elif ! cmp -s "$OUT_OURS.raw" "$OUT_QEMU.raw"; then
			status="FAIL(differs)"
			NOTES+=("$job: $(cmp "$OUT_OURS.raw" "$OUT_QEMU.raw" 2>&1 | head -n1)")
		fi
	elif [ "$kind" = check ]; then
		ours_a=("$OURS_CHECK" -f "$fmt" --output=json "$img")
		qemu_a=(qemu-img check -f "$fmt" --output=json "$img")
		rss "$W/rss.ours" "${ours_a[@]}" > "$OUT_OURS.json" 2> "$W/log/$job.ours.err"; rc=$?
		rss "$W/rss.qemu" "${qemu_a[@]}" > "$OUT_QEMU.json" 2> "$W/log/$job.qemu.err"; qrc=$?
		# The counts are compared whenever both checks completed (exit 0,
		# 2: corruptions, 3: leaks), to say in a note which ones disagree.
		local diffs=
		[[ $rc$qrc == [023][023] ]] &&
			diffs=$(check_counts_differ "$OUT_OURS.json" "$OUT_QEMU.json")
		if [ $qrc != 0 ]; then status="FAIL(qemu-img exit $qrc)"
		elif [ $rc != 0 ]; then status="FAIL(exit $rc)"
		elif [ -n "$diffs" ]; then status="FAIL(differs)"
		fi
		if [ -n "$diffs" ]; then
			cp "$OUT_OURS.json" "$W/log/$job.ours.json"
			cp "$OUT_QEMU.json" "$W/log/$job.qemu.json"
			NOTES+=("$job: $diffs (see $W/log/$job.{ours,qemu}.json)")
		fi
		# A check that exits 2 or 3 completed and found problems: it is
		# still timed (hyperfine told to ignore the status), the row FAILs.
		[[ $rc == [23] || $qrc == [23] ]] && quirk=1
	else
		ours_a=("$OURS_MAP" -f "$fmt" --output=json "$img")
		qemu_a=(qemu-img map -f "$fmt" --output=json "$img")
		rss "$W/rss.ours" "${ours_a[@]}" > "$OUT_OURS.json" 2> "$W/log/$job.ours.err"; rc=$?
		rss "$W/rss.qemu" "${qemu_a[@]}" > "$OUT_QEMU.json" 2> "$W/log/$job.qemu.err"; qrc=$?
		if [ $qrc != 0 ]; then status="FAIL(qemu-img exit $qrc)"
		elif [ $rc != 0 ]; then status="FAIL(exit $rc)"
		elif [ "$(tr -d ' \t\r\n' < "$OUT_OURS.json" | cksum)" != \
		       "$(tr -d ' \t\r\n' < "$OUT_QEMU.json" | cksum)" ]; then
			status="FAIL(differs)"
			cp "$OUT_OURS.json" "$W/log/$job.ours.json"
			cp "$OUT_QEMU.json" "$W/log/$job.qemu.json"
			NOTES+=("$job: JSON differs, see $W/log/$job.{ours,qemu}.json")
		fi
	fi
	if [ $rc != 0 ] && [ -s "$W/log/$job.ours.err" ]; then
		NOTES+=("$job: $(head -n1 "$W/log/$job.ours.err")")
	fi
	if [ $qrc != 0 ] && [ -s "$W/log/$job.qemu.err" ]; then
		NOTES+=("$job: $(head -n1 "$W/log/$job.qemu.err")")
	fi
	[ -s "$W/log/$job.ours.err" ] || rm -f "$W/log/$job.ours.err"
	[ -s "$W/log/$job.qemu.err" ] || rm -f "$W/log/$job.qemu.err"
	local ours_rss qemu_rss
	ours_rss=$(kib_to_mib "$(cat "$W/rss.ours" 2>/dev/null)")
	qemu_rss=$(kib_to_mib "$(cat "$W/rss.qemu" 2>/dev/null)")
	[ $rc = 0 ] || [[ $kind == check && $rc == [23] ]] || ours_rss=-
	cleanup

	local prep= ours_c= qemu_c= t_ours=- t_qemu=- ratio=- exact=- warmup=1 once_ours= once_qemu=
	if [ "$kind" = convert ]; then
		prep="rm -f $(qword "$OUT_OURS.$ofmt") $(qword "$OUT_QEMU.$ofmt")"
		# The check run warmed the page cache: a warm-up run of a command
		# that takes seconds would only add machine time, and one that takes
		# SLOW seconds or more is not run again: its check run is its time.
		{ at_least "$tc_ours" 2 || at_least "$tc_qemu" 2; } && warmup=0
		[ $rc = 0 ] && at_least "$tc_ours" "$SLOW" && once_ours=1
		[ $qrc = 0 ] && at_least "$tc_qemu" "$SLOW" && once_qemu=1
	fi
	{ [ $rc = 0 ] || [[ $kind == check && $rc == [23] ]]; } && [ -z "$once_ours" ] &&
		ours_c=$(qcmd "${ours_a[@]}")
	[ -z "$once_qemu" ] && qemu_c=$(qcmd "${qemu_a[@]}")
	if [ $qrc = 0 ] || [ -n "$quirk" ]; then
		[ -n "$ours_c$qemu_c" ] && say "$job: timing"
		read -r t_ours t_qemu < <(time_pair "$job" "$prep" "$ours_c" "$qemu_c" "$warmup" "$quirk")
		cleanup
		[ -n "$t_ours" ] || t_ours=-
		[ -n "$t_qemu" ] || t_qemu=-
		[ -n "$once_ours" ] && t_ours=$tc_ours
		[ -n "$once_qemu" ] && t_qemu=$tc_qemu
		[ "$t_ours" = - ] && [ "$t_qemu" = - ] && NOTES+=("$job: timing failed, see $W/log/$job.txt")
	fi
	if [ "$t_ours" != - ] && [ "$t_qemu" != - ]; then
		ratio=$(awk -v o="$t_ours" -v q="$t_qemu" 'BEGIN {
			if (o > 0) printf "%.2f", q / o; else print "-" }')
		# Unrounded, for the bars: 0.996 is slower though shown as 1.00.
		exact=$(awk -v o="$t_ours" -v q="$t_qemu" 'BEGIN {
			if (o > 0) printf "%.6f", q / o; else print "-" }')
	fi
	t_ours=$(secs "$t_ours")${once_ours:+*}
	t_qemu=$(secs "$t_qemu")${once_qemu:+*}
	add_row "$job" "$t_ours" "$t_qemu" "$ratio" "$ours_rss" "$qemu_rss" "$status" "$exact"
}

# The bars set for us (misses are listed under the table, not marked FAIL:
# timings depend on the machine): peak RSS under RSS_BAR_MIB on every convert
# job, and a minimum speed ratio on some (check-qcow2-4k: no slower).
RSS_BAR_MIB=64
RATIO_BAR_JOBS=(convert-qcow-qed check-qcow2-4k)
ratio_bar() {
	case "$1" in
	convert-qcow-qed) echo 5 ;;
	check-qcow2-4k) echo 1 ;;
	*) return 1 ;;
	esac
}
# bars_text: the bars in a line.
bars_text() {
	local t="our RSS < ${RSS_BAR_MIB} MiB on converts" job
	for job in "${RATIO_BAR_JOBS[@]}"; do t="$t; $job ratio >= $(ratio_bar "$job")"; done
	echo "$t"
}

# bar_misses: one line per row that misses a bar.
bar_misses() {
	local r job ratio rss bar exact
	for r in "${ROWS[@]}"; do
		IFS=$'\t' read -r job _ _ ratio rss _ _ exact <<< "$r"
		if [[ $job == convert-* ]] && [ "$rss" != - ] && awk -v m="$rss" -v b="$RSS_BAR_MIB" 'BEGIN { exit !(m >= b) }'; then
			echo "$job: peak RSS $rss MiB, not under $RSS_BAR_MIB MiB"
		fi
		bar=$(ratio_bar "$job") || continue
		if [ "$ratio" = - ]; then
			echo "$job: no ratio, so the ${bar}x bar is not met"
		elif awk -v r="$exact" -v b="$bar" 'BEGIN { exit !(r < b) }'; then
			echo "$job: ratio $(awk -v r="$exact" 'BEGIN { printf "%.3f", r }'), below the ${bar}x bar"
		fi
	done
}

t_start=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
run_job convert-qcow2      convert qcow2 corpus.qcow2
run_job convert-qcow       convert qcow  corpus.qcow
run_job convert-qed        convert qed   corpus.qed
run_job convert-qcow2-zlib convert qcow2 corpus-zlib.qcow2
run_job convert-qcow-qed   convert qcow  corpus.qcow  qed
run_job convert-qcow2-qed  convert qcow2 corpus.qcow2 qed
run_job convert-qed-qcow2  convert qed   corpus.qed   qcow2
run_job convert-raw-qcow2  convert raw   corpus.raw   qcow2
run_job convert-qcow-qcow2 convert qcow  corpus.qcow  qcow2
run_job convert-c-qcow2    convert raw   corpus.raw   qcow2 -c
run_job convert-c-qcow     convert raw   corpus.raw   qcow  -c
run_job map-qcow2          map     qcow2 corpus.qcow2
run_job map-qcow           map     qcow  corpus.qcow
run_job map-qed            map     qed   corpus.qed
run_job map-sparse-qcow2   map     qcow2 sparse.qcow2
run_job map-sparse-qed     map     qed   sparse.qed
run_job check-qcow2-4k     check   qcow2 corpus-4k.qcow2
run_job check-qcow2        check   qcow2 corpus.qcow2
run_job check-qed          check   qed   corpus.qed
run_job check-zlib         check   qcow2 corpus-zlib.qcow2

# --- Report --------------------------------------------------------------

{
	echo
	printf 'imgtools bench: %s MiB corpus, sparse images %s; %s; %s\n' "$MIB" "$SPARSE" \
		"$(if [ -n "$HYPERFINE" ]; then echo "$STAT of >=$RUNS runs ($("$HYPERFINE" --version))"; else echo "best of $RUNS runs"; fi) after 1 warm-up (none for converts of 2 s or more)" \
		"$(qemu-img --version | head -n1)"
	printf 'host: %s, %s CPUs, load %s at start, %s at end; tree: %s; %s\n' \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)" \
		"$(nproc 2>/dev/null || echo ?)" "$LOAD0" \
		"$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" \
		"$TREE" \
		"$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	fmt='%-20s %9s %9s %7s %9s %9s  %s\n'
	printf "$fmt" job 'ours(s)' 'qemu(s)' ratio 'RSS(MiB)' 'qRSS(MiB)' check
	printf "$fmt" -------------------- --------- --------- ------- --------- --------- -----
	for r in "${ROWS[@]}"; do
		IFS=$'\t' read -r a b c d e f g _ <<< "$r"
		printf "$fmt" "$a" "$b" "$c" "$d" "$e" "$f" "$g"
	done
	echo
	echo 'ratio = qemu-img time / our time (>1: we are faster); RSS = our peak resident'
	echo 'set size, qRSS = qemu-img'"'"'s; check: -O raw and map outputs equal qemu-img'"'"'s (raw'
	echo 'bytes with cmp, map JSON with whitespace removed); qcow, qcow2 and QED outputs'
	echo 'pass qemu-img check (not qcow) and qemu-img compare with corpus.raw. A time'
	echo "with * is a single run, the check run: commands taking ${SLOW} s or more run once."
	echo 'check-* jobs: both exit 0 and their JSON counts agree (an absent count is 0).'
	bars=$(bar_misses)
	echo
	if [ -n "$bars" ]; then
		echo "bars missed ($(bars_text)):"
		printf '%s\n' "$bars" | sed 's/^/  /'
	else
		echo "bars met: $(bars_text) (of the jobs run)"
	fi
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo 'notes:'
		for n in "${NOTES[@]}"; do echo "  $n"; done
	fi
	echo
	echo "work dir $W: $(du -sh "$W" 2>/dev/null | cut -f1) on disk; run took $((SECONDS - t_start)) s"
} | tee "$W/results.txt"

fails=0
for r in "${ROWS[@]}"; do case "$r" in *FAIL*) fails=$((fails + 1)) ;; esac; done
[ $fails = 0 ] || { say "$fails job(s) marked FAIL"; exit 1; }
exit 0
