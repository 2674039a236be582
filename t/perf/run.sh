#!/bin/bash
# run.sh: times img-convert, img-map, img-check and img-compact against qemu-img on deterministic images, side by side (make bench).
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
#   convert-sparse-SRC-DST   the same on the 8 TiB sparse images
#                         (qcow2-qed, qed-qcow2; not qcow v1, which
#                         qemu-img walks a cluster at a time: hours),
#                         compared with their source; check-sparse-FMT too.
#   map-FMT, map-sparse-FMT   img-map --output=json vs qemu-img map.
#   check-qcow2-4k, check-qcow2, check-qed, check-zlib   img-check -f FMT
#                         --output=json vs qemu-img check (read-only) on
#                         corpus-4k.qcow2 (4 KiB clusters), corpus.qcow2,
#                         corpus.qed, corpus-zlib.qcow2: both must exit 0 and
#                         report the same counts (errors, leaks, corruptions,
#                         clusters, image end offset).
#   compact-qcow2, compact-qed, compact-qcow   img-compact IMG on a fresh
#                         copy of a fully allocated, half zero-filled image
#                         (t/perf/zfill.c) vs qemu-img convert -O FMT IMG OUT,
#                         best of RUNS each; also bytes written (wchar), final
#                         size and extra disk during the run. Our image must
#                         compare identical to the source and pass qemu-img
#                         check (not qcow). A format img-compact refuses FAILs.
#   compact-scan-zeros    img-compact -n on a fully allocated all-zeros qcow2.
#   Bars (listed under the table when missed, not FAIL): our peak RSS under
#   64 MiB on every convert job, convert-qcow-qed at least 5x qemu-img,
#   check-qcow2-4k no slower than qemu-img (ratio >= 1). Compaction bars
#   (each printed PASS or FAIL; a FAIL there does not change the exit
#   status): time ratio >= 1 (qcow2, QED), >= 5 (qcow); bytes written
#   <= 0.5 x qemu-img's; final size <= qemu-img's; extra disk <= 4
#   clusters; compact-scan-zeros under 1 s.
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
#   IMG_PERF_SPARSE=8T    virtual size of the sparse qcow2 and QED images.
#   IMG_PERF_VERIFY=1     re-hash the corpus before reusing it; otherwise the
#                         stamp is checked against each file's size and mtime.
#   IMG_PERF_STAT=mean    which hyperfine statistic the table shows: mean,
#                         median or min (on a busy machine, min is steadier).
#   IMG_PERF_VERBOSE=1    show hyperfine's own output (else it goes to DIR/log/).
#   IMG_PERF_NO_INSTALL=1 never try to apt-get install hyperfine or time.
#   IMG_PERF_CONVERT, IMG_PERF_MAP, IMG_PERF_CHECK, IMG_PERF_COMPACT  our
#                         commands to measure (default: the built
#                         cmd/img-convert, cmd/img-map, cmd/img-check and
#                         cmd/img-compact), e.g. an installed or an older build.
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
# size at peak (2G corpus: ~9 GiB; each job's outputs are deleted after it);
# the compaction sources add about 4x IMG_PERF_SIZE, plus a copy at a time.
# See t/perf/README for reading the table.

set -u
export LC_ALL=C LANG=C TZ=UTC

top=$(cd "$(dirname "$0")/../.." && pwd)
perf=$top/t/perf
W=${IMG_PERF_DIR:-$perf/work}
RUNS=${IMG_PERF_RUNS:-3}
SIZE=${IMG_PERF_SIZE:-2G}
SPARSE=${IMG_PERF_SPARSE:-8T}
JOBS=${IMG_PERF_JOBS:-*}
VERBOSE=${IMG_PERF_VERBOSE:-}
STAT=${IMG_PERF_STAT:-mean}
SLOW=${IMG_PERF_SLOW:-20}
OURS_CONVERT=${IMG_PERF_CONVERT:-$top/cmd/img-convert}
OURS_MAP=${IMG_PERF_MAP:-$top/cmd/img-map}
OURS_CHECK=${IMG_PERF_CHECK:-$top/cmd/img-check}
OURS_COMPACT=${IMG_PERF_COMPACT:-$top/cmd/img-compact}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# selected JOB: JOB matches one of the IMG_PERF_JOBS patterns.
selected() {
	local p -
	set -f	# the patterns are for the job names, not for files
	for p in $JOBS; do
		# shellcheck disable=SC2053
		[[ $1 == $p ]] && return 0
	done
	return 1
}

# The jobs on the corpus (corpus.raw and the images derived from it); the
# compaction jobs have sources of their own (zfill.*, zeros.qcow2).
CORPUS_JOBS="convert-qcow2 convert-qcow convert-qed convert-qcow2-zlib
convert-qcow-qed convert-qcow2-qed convert-qed-qcow2 convert-raw-qcow2
convert-qcow-qcow2 convert-c-qcow2 convert-c-qcow map-qcow2 map-qcow map-qed
map-sparse-qcow2 map-sparse-qed check-qcow2-4k check-qcow2 check-qed check-zlib
convert-sparse-qcow2-qed convert-sparse-qed-qcow2
check-sparse-qcow2 check-sparse-qed"
COMPACT_JOBS="compact-qcow2 compact-qed compact-qcow compact-scan-zeros"
# any_selected JOB...: one of them is selected.
any_selected() {
	local j
	for j in "$@"; do selected "$j" && return 0; done
	return 1
}
# shellcheck disable=SC2086
any_selected $CORPUS_JOBS $COMPACT_JOBS || die "IMG_PERF_JOBS '$JOBS' selects no job"

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
	die "IMG_PERF_SPARSE '$SPARSE' is not a whole number of MiB (e.g. 8T)"
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
OURS_COMPACT=$(command -v "$OURS_COMPACT") ||
	die "'${IMG_PERF_COMPACT:-cmd/img-compact}' not found; run make (or make bench)"
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
cleanup() { rm -f "$OUT_OURS".* "$OUT_QEMU".* "$W"/.out.ours.* "$W"/rss.* "$W"/m.ours.* "$W"/m.qemu.*; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
cleanup

# --- Corpus and derived images -------------------------------------------

# Measure a snapshot of our commands: other people rebuilding cmd/ while
# the benchmark runs must not swap binaries under it.
mkdir -p "$W/bin" && cp -f "$OURS_CONVERT" "$W/bin/img-convert" &&
	cp -f "$OURS_MAP" "$W/bin/img-map" && cp -f "$OURS_CHECK" "$W/bin/img-check" &&
	cp -f "$OURS_COMPACT" "$W/bin/img-compact" ||
	die "cannot copy our commands to '$W/bin'"
OURS_CONVERT=$W/bin/img-convert
OURS_MAP=$W/bin/img-map
OURS_CHECK=$W/bin/img-check
OURS_COMPACT=$W/bin/img-compact
"$OURS_CONVERT" --help >/dev/null 2>&1 && "$OURS_MAP" --help >/dev/null 2>&1 &&
	"$OURS_CHECK" --help >/dev/null 2>&1 && "$OURS_COMPACT" --help >/dev/null 2>&1 ||
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

# shellcheck disable=SC2086
if any_selected $CORPUS_JOBS; then
	if corpus_ok; then
		say "reusing the ${MIB} MiB corpus in $W (stamp matches)"
	else
		build_corpus
	fi
	make_extras
fi

# --- Compaction sources --------------------------------------------------

# zfill.qcow2, zfill.qed, zfill.qcow: fully allocated (qemu-img convert -S 0)
# images of IMG_PERF_SIZE from t/perf/zfill.c's layout, half data, half
# stored zeros; zeros.qcow2: fully allocated and all zeros. Kept in the work
# directory with a stamp of their own (zstamp); the raw files are deleted.
ZIMAGES="zfill.qcow2 zfill.qed zfill.qcow zeros.qcow2"
zstamp_head() {
	printf 'imgtools perf zero-fill v1\nsize_mib %s\n' "$MIB"
	printf 'zfill %s\n' "$(cksum < "$perf/zfill.c")"
	printf 'qemu %s\n' "$(qemu-img --version | head -n1)"
}
zstamp_files() {
	local f
	for f in $ZIMAGES; do printf 'file %s %s\n' "$f" "$(stat -c '%s %Y' "$W/$f")"; done
}
zsources_ok() {
	local f
	[ -f "$W/zstamp" ] || return 1
	for f in $ZIMAGES; do [ -f "$W/$f" ] || return 1; done
	[ "$(cat "$W/zstamp")" = "$(zstamp_head; zstamp_files)" ]
}
build_zsources() {
	local f fmt t0=$SECONDS
	rm -f "$W/zstamp"
	for f in $ZIMAGES; do rm -f "$W/$f"; done
	$CC -std=gnu11 -O2 -o "$W/zfill" "$perf/zfill.c" || die "cannot build t/perf/zfill.c"
	say "writing the ${MIB} MiB zero-filled raw source, deriving fully allocated qcow2, QED, qcow"
	"$W/zfill" "$MIB" "$W/zfill.raw" || die "zfill failed"
	for fmt in qcow2 qed qcow; do
		qemu-img convert -f raw -S 0 -O $fmt "$W/zfill.raw" "$W/zfill.$fmt" ||
			die "qemu-img convert failed while deriving zfill.$fmt"
	done
	rm -f "$W/zfill.raw"
	truncate -s "${MIB}M" "$W/zeros.raw" &&
		qemu-img convert -f raw -S 0 -O qcow2 "$W/zeros.raw" "$W/zeros.qcow2" ||
		die "cannot make zeros.qcow2"
	rm -f "$W/zeros.raw"
	{ zstamp_head; zstamp_files; } > "$W/zstamp"
	say "compaction sources ready in $((SECONDS - t0)) s"
}
# shellcheck disable=SC2086
if any_selected $COMPACT_JOBS; then
	if zsources_ok; then
		say "reusing the ${MIB} MiB compaction sources in $W (zstamp matches)"
	else
		build_zsources
	fi
fi

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
	# (VREF, VREF_FMT: the reference when it is not corpus.raw)
	qemu-img compare -f "${VREF_FMT:-raw}" -F "$ofmt" "${VREF:-$CORPUS}" "$out" > "$log" 2>&1; rc=$?
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
RATIO_BAR_JOBS=(convert-qcow-qed check-qcow2-4k convert-sparse-qcow2-qed
	convert-sparse-qed-qcow2 check-sparse-qcow2 check-sparse-qed
	map-sparse-qcow2 map-sparse-qed)
ratio_bar() {
	case "$1" in
	convert-qcow-qed) echo 5 ;;
	check-qcow2-4k|*-sparse-*) echo 1 ;;
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

# --- Compaction jobs -----------------------------------------------------

# measure PREFIX CMD...: run CMD once with its output in PREFIX.out and
# PREFIX.err and its peak RSS (KiB) in PREFIX.rss, under a shell that waits
# for it and then prints its own /proc/PID/io: the kernel adds a reaped
# child's I/O counts to its parent's, so that shell's wchar is what CMD
# wrote (write and pwrite bytes, page cache or not), plus the three files,
# which are subtracted. Sets MRC (exit status), MW (bytes) and MRSS (KiB).
measure() {
	local p=$1 tool w
	shift
	if [ "$RSS_TOOL" = time ]; then
		tool="/usr/bin/time -f %M -o $(qword "$p.rss")"
	else
		tool="$(qword "$W/maxrss") $(qword "$p.rss")"
	fi
	sh -c "$tool $(qcmd "$@") >$(qword "$p.out") 2>$(qword "$p.err"); r=\$?
		cat /proc/\$\$/io; exit \$r" > "$p.io"
	MRC=$?
	w=$(sed -n 's/^wchar: //p' "$p.io")
	MW=-
	[ -n "$w" ] && MW=$((w - $(stat -c %s "$p.out") - $(stat -c %s "$p.err") - $(stat -c %s "$p.rss")))
	MRSS=$(tail -n1 "$p.rss" 2>/dev/null)
}

# json_field FILE KEY: a number from a flat JSON object ("" when absent).
json_field() { perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit;
	my $j = eval { decode_json(<$f>) } or exit; print $j->{$ARGV[1]} // ""' "$1" "$2"; }
# compare_images JOB FMT A B: set VSTATUS to ok when qemu-img compare finds
# A and B identical and, but for qcow v1, qemu-img check finds B clean.
compare_images() {
	local job=$1 fmt=$2 a=$3 b=$4 rc log=$W/log/$1.compare.txt
	VSTATUS=ok
	qemu-img compare -f "$fmt" -F "$fmt" "$a" "$b" > "$log" 2>&1; rc=$?
	case $rc in
	0) rm -f "$log" ;;
	1) VSTATUS="FAIL(differs)"; note_from "$job: qemu-img compare" "$log"; return ;;
	*) VSTATUS="FAIL(compare exit $rc)"; note_from "$job: qemu-img compare" "$log"; return ;;
	esac
	[ "$fmt" = qcow ] && return
	log=$W/log/$job.check.txt
	qemu-img check -f "$fmt" "$b" > "$log" 2>&1; rc=$?
	if [ $rc = 0 ]; then
		rm -f "$log"
	else
		VSTATUS="FAIL(check exit $rc)"
		note_from "$job: qemu-img check" "$log"
	fi
}

CROWS=()
add_crow() { CROWS+=("$(printf '%s\t' "$@")"); }
to_mib2() { case "$1" in ''|-|*[!0-9-]*) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }

# fresh_copy_cmd SRC COPY: the shell command making COPY a fully allocated
# copy of SRC, written back to disk (sync FILE): a compaction's flushes
# must not pay for the copy's dirty pages, which an image at rest has not.
fresh_copy_cmd() {
	printf 'cp --sparse=never --reflink=never %s %s && sync %s' "$(qword "$1")" "$(qword "$2")" "$(qword "$2")"
}
fresh_copy() { sh -c "$(fresh_copy_cmd "$1" "$2")"; }

# compact_job JOB FMT: img-compact on a fresh copy of zfill.FMT (made before
# each run, not timed) against qemu-img convert -O FMT of it to a new file,
# best of RUNS each (the check run warmed the page cache). The check run
# measures the bytes each wrote and the disk each needed, and verifies the
# result: our compacted copy and qemu-img's output against zfill.FMT.
compact_job() {
	local job=$1 fmt=$2 src=$W/zfill.$2 copy=$OUT_OURS.$2 out=$OUT_QEMU.$2
	local status=ok rc qrc w=- qw=- size=- qsize=- extra=- qextra=- cs=- rss=- qrss=-
	local t_ours=- t_qemu=- t_nosync=- ratio=- exact=- before peak
	selected "$job" || return 0
	say "$job: checking"
	rm -f "$W/log/$job".*
	cleanup
	fresh_copy "$src" "$copy" || die "cannot copy $src"
	measure "$W/m.ours" "$OURS_COMPACT" --output=json "$copy"
	rc=$MRC
	if [ $rc = 0 ]; then
		w=$MW rss=$(kib_to_mib "$MRSS")
		size=$(stat -c %s "$copy")
		before=$(json_field "$W/m.ours.out" file-size-before)
		peak=$(json_field "$W/m.ours.out" file-size-peak)
		cs=$(json_field "$W/m.ours.out" cluster-size)
		[ -n "$before" ] && [ -n "$peak" ] && extra=$((peak - before))
		compare_images "$job" "$fmt" "$src" "$copy"
		status=$VSTATUS
	else
		status="FAIL(exit $rc)"
		NOTES+=("$job: $(head -n1 "$W/m.ours.err")")
	fi
	rm -f "$copy"
	measure "$W/m.qemu" qemu-img convert -f "$fmt" -O "$fmt" "$src" "$out"
	qrc=$MRC
	if [ $qrc = 0 ]; then
		qw=$MW qrss=$(kib_to_mib "$MRSS")
		qsize=$(stat -c %s "$out")
		qextra=$(( $(stat -c '%b * %B' "$out") ))
	else
		[ "$status" = ok ] && status="FAIL(qemu-img exit $qrc)"
		NOTES+=("$job: qemu-img: $(head -n1 "$W/m.qemu.err")")
	fi
	cleanup
	if [ $rc = 0 ] || [ $qrc = 0 ]; then
		say "$job: timing (best of $RUNS)"
		[ $rc = 0 ] && t_ours=$(best_of "$(fresh_copy_cmd "$src" "$copy")" \
			"$(qcmd "$OURS_COMPACT" "$copy")" 0)
		# img-compact's result is durable when it exits (it flushes
		# before each step it depends on); qemu-img convert's output is
		# not (no flush at the end), so the peer route is the convert
		# and a sync of its output. The convert alone goes in a note.
		if [ $qrc = 0 ]; then
			t_qemu=$(best_of "rm -f $(qword "$out")" \
				"$(qcmd qemu-img convert -f "$fmt" -O "$fmt" "$src" "$out") && sync $(qword "$out")" 0)
			t_nosync=$(best_of "rm -f $(qword "$out")" \
				"$(qcmd qemu-img convert -f "$fmt" -O "$fmt" "$src" "$out")" 0)
			NOTES+=("$job: qemu-img convert alone (output not yet on disk): $(secs "$t_nosync") s")
		fi
		cleanup
	fi
	if [ "$t_ours" != - ] && [ "$t_qemu" != - ]; then
		ratio=$(awk -v o="$t_ours" -v q="$t_qemu" 'BEGIN { if (o > 0) printf "%.2f", q / o; else print "-" }')
		exact=$(awk -v o="$t_ours" -v q="$t_qemu" 'BEGIN { if (o > 0) printf "%.6f", q / o; else print "-" }')
	fi
	add_crow "$job" "$(secs "$t_ours")" "$(secs "$t_qemu")" "$ratio" "$w" "$qw" "$size" "$qsize" \
		"$extra" "$qextra" "$rss" "$qrss" "$status" "$exact" "$cs"
}

# compact_scan_job JOB: img-compact -n (a dry run: read and scan only) on
# the fully allocated all-zeros zeros.qcow2; best of RUNS after the check
# run, which must find every scanned cluster zero.
compact_scan_job() {
	local job=$1 img=$W/zeros.qcow2 status=ok rc t=- rss=- scanned zero
	selected "$job" || return 0
	say "$job: checking"
	rm -f "$W/log/$job".*
	measure "$W/m.ours" "$OURS_COMPACT" -n --output=json "$img"
	rc=$MRC
	if [ $rc != 0 ]; then
		status="FAIL(exit $rc)"
		NOTES+=("$job: $(head -n1 "$W/m.ours.err")")
	else
		rss=$(kib_to_mib "$MRSS")
		scanned=$(json_field "$W/m.ours.out" clusters-scanned)
		zero=$(json_field "$W/m.ours.out" zero-clusters)
		if [ -z "$scanned" ] || [ "$scanned" = 0 ] || [ "$scanned" != "$zero" ]; then
			status="FAIL(differs)"
			NOTES+=("$job: ${zero:-?} zero clusters of ${scanned:-?} scanned; all should be")
		fi
		say "$job: timing (best of $RUNS)"
		t=$(best_of "" "$(qcmd "$OURS_COMPACT" -n "$img")" 0)
	fi
	cleanup
	add_crow "$job" "$(secs "$t")" - - - - - - - - "$rss" - "$status" - - "$t"
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
# The sparse images: every command must cost what is stored, not what is
# addressed.
VREF=$W/sparse.qcow2 VREF_FMT=qcow2 \
run_job convert-sparse-qcow2-qed  convert qcow2 sparse.qcow2 qed
VREF=$W/sparse.qed VREF_FMT=qed \
run_job convert-sparse-qed-qcow2  convert qed   sparse.qed   qcow2
run_job check-sparse-qcow2        check   qcow2 sparse.qcow2
run_job check-sparse-qed          check   qed   sparse.qed
compact_job compact-qcow2 qcow2
compact_job compact-qed   qed
compact_job compact-qcow  qcow
compact_scan_job compact-scan-zeros

# main_table: the convert, map and check jobs, with their bars.
main_table() {
	local fmt r a b c d e f g bars
	echo
	fmt='%-24s %9s %9s %7s %9s %9s  %s\n'
	printf "$fmt" job 'ours(s)' 'qemu(s)' ratio 'RSS(MiB)' 'qRSS(MiB)' check
	printf "$fmt" ------------------------ --------- --------- ------- --------- --------- -----
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
}

# mib N: bytes as MiB with one decimal; kib N: as KiB, whole.
mib() { case "$1" in ''|-) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }
kib() { case "$1" in ''|-) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.0f", b / 1024 }' ;; esac; }

# compact_table: the compaction jobs and their bars, each PASS or FAIL.
compact_table() {
	local fmt r job t tq ratio w qw size qsize extra qextra rss qrss status exact cs traw
	echo
	echo "compaction: img-compact IMG (a fresh copy each run) vs qemu-img convert -O FMT IMG OUT;"
	echo "best of $RUNS runs after the check run, warm page cache"
	echo
	fmt='%-18s %7s %7s %6s %7s %7s %7s %7s %7s %7s %5s %5s  %s\n'
	{
	printf "$fmt" '' ours qemu '' ours qemu ours qemu ours qemu ours qemu ''
	printf "$fmt" job '(s)' '(s)' ratio 'wr MiB' 'wr MiB' 'size' 'size' 'extra' 'extra' RSS RSS check
	printf "$fmt" '' '' '' '' '' '' MiB MiB KiB MiB MiB MiB ''
	printf "$fmt" ------------------ ------- ------- ------ ------- ------- ------- ------- ------- ------- ----- ----- -----
	for r in "${CROWS[@]}"; do
		IFS=$'\t' read -r job t tq ratio w qw size qsize extra qextra rss qrss status _ <<< "$r"
		printf "$fmt" "$job" "$t" "$tq" "$ratio" "$(mib "$w")" "$(mib "$qw")" "$(mib "$size")" \
			"$(mib "$qsize")" "$(kib "$extra")" "$(mib "$qextra")" "$rss" "$qrss" "$status"
	done
	} | sed 's/ *$//'
	echo
	echo 'wr = bytes written (wchar in /proc/PID/io); size = final file size (ours: the'
	echo 'compacted image; qemu-img: its output); extra = more disk needed during the run'
	echo '(ours: file-size-peak - file-size-before; qemu-img: its output'"'"'s allocated size,'
	echo 'as it coexists with the input); RSS = peak resident set size. check: our image'
	echo 'compares identical to the source and passes qemu-img check (not qcow);'
	echo 'compact-scan-zeros (img-compact -n, all-zeros qcow2): every cluster found zero.'
	echo
	echo 'compaction bars:'
	compact_bars | sed 's/^/  /'
}

# pass_fail COND TEXT: "PASS TEXT" or "FAIL TEXT" as the awk condition holds.
pass_fail() { if awk "BEGIN { exit !($1) }"; then echo "PASS $2"; else echo "FAIL $2"; fi; }

# compact_bars: one PASS or FAIL line per bar of each compaction job run.
compact_bars() {
	local r job t tq ratio w qw size qsize extra qextra rss qrss status exact cs traw bar
	for r in "${CROWS[@]}"; do
		IFS=$'\t' read -r job t tq ratio w qw size qsize extra qextra rss qrss status exact cs traw <<< "$r"
		if [ "$job" = compact-scan-zeros ]; then
			if [ "${traw:--}" = - ]; then echo "FAIL $job: not timed, so under 1 s is not met"
			else pass_fail "$traw < 1" "$job: $(secs "$traw") s, under 1 s"; fi
			continue
		fi
		bar=1
		[ "$job" = compact-qcow ] && bar=5
		if [ "$exact" = - ]; then echo "FAIL $job: no time ratio, so >= $bar is not met"
		else pass_fail "$exact >= $bar" "$job: time ratio $(awk -v r="$exact" 'BEGIN { printf "%.3f", r }') >= $bar"; fi
		if [ "$w" = - ] || [ "$qw" = - ]; then echo "FAIL $job: bytes written not measured on both sides"
		else pass_fail "$w <= 0.5 * $qw" "$job: wrote $(mib "$w") MiB <= 0.5 x qemu-img's $(mib "$qw") MiB"; fi
		if [ "$size" = - ] || [ "$qsize" = - ]; then echo "FAIL $job: final sizes not measured on both sides"
		else pass_fail "$size <= $qsize" "$job: final size $(mib "$size") MiB <= qemu-img's $(mib "$qsize") MiB"; fi
		if [ "$extra" = - ] || [ "$cs" = - ]; then echo "FAIL $job: extra disk not measured"
		else pass_fail "$extra <= 4 * $cs" "$job: extra disk $(kib "$extra") KiB <= 4 clusters ($(kib $((4 * cs))) KiB)"; fi
	done
}

# --- Report --------------------------------------------------------------

{
	echo
	if [ ${#ROWS[@]} = 0 ]; then
		printf 'imgtools bench: %s MiB images, compaction jobs only; %s\n' "$MIB" \
			"$(qemu-img --version | head -n1)"
	else
	printf 'imgtools bench: %s MiB corpus, sparse images %s; %s; %s\n' "$MIB" "$SPARSE" \
		"$(if [ -n "$HYPERFINE" ]; then echo "$STAT of >=$RUNS runs ($("$HYPERFINE" --version))"; else echo "best of $RUNS runs"; fi) after 1 warm-up (none for converts of 2 s or more)" \
		"$(qemu-img --version | head -n1)"
	fi
	printf 'host: %s, %s CPUs, load %s at start, %s at end; tree: %s; %s\n' \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)" \
		"$(nproc 2>/dev/null || echo ?)" "$LOAD0" \
		"$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" \
		"$TREE" \
		"$(date -u '+%Y-%m-%d %H:%M UTC')"
	[ ${#ROWS[@]} -gt 0 ] && main_table
	[ ${#CROWS[@]} -gt 0 ] && compact_table
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo 'notes:'
		for n in "${NOTES[@]}"; do echo "  $n"; done
	fi
	echo
	echo "work dir $W: $(du -sh "$W" 2>/dev/null | cut -f1) on disk; run took $((SECONDS - t_start)) s"
} | tee "$W/results.txt"

fails=0
for r in "${ROWS[@]}" "${CROWS[@]}"; do case "$r" in *FAIL*) fails=$((fails + 1)) ;; esac; done
[ $fails = 0 ] || { say "$fails job(s) marked FAIL"; exit 1; }
exit 0
