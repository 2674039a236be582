#!/bin/sh
# 9200-fuzz-replay.sh: the fuzz targets of t/fuzz/, built without libFuzzer, replay the seed corpus and every past finding.
test_description='fuzz targets replay the seeds and the findings'
. "$(dirname "$0")/lib.sh"

fuzz=$TEST_DIRECTORY/fuzz
targets='read check leaks all compact stream demote'

# A finding still open for a target says so in a line "# open: TARGET...".
open_for() {   # open_for TARGET FINDING-SCRIPT
	sed -n 's/^# open://p' "$2" | tr ' ' '\n' | grep -qx "$1"
}

test_expect_success 'seed corpus: every format and feature' '
	sh "$fuzz"/make-seeds.sh seeds &&
	for ext in raw qcow qcow2 qed; do
		ls seeds/*.$ext >/dev/null || return 1
	done &&
	test $(ls seeds | wc -l) -ge 30
'

test_expect_success 'findings: each script makes its input' '
	mkdir findings &&
	for f in "$fuzz"/findings/*.sh; do
		n=${f##*/} &&
		sh "$f" seeds findings/${n%.sh} &&
		test -s findings/${n%.sh} || return 1
	done
'

for t in $targets; do
	test_expect_success "replay-$t: seeds and findings" '
		set -- seeds/* &&
		for f in "$fuzz"/findings/*.sh; do
			n=${f##*/} &&
			if ! open_for $t "$f"; then
				set -- "$@" findings/${n%.sh}
			fi
		done &&
		"$fuzz"/replay-$t "$@" 2>err &&
		no_sanitizer_report err &&
		grep "^replay: $# inputs\$" err
	'
	for f in "$fuzz"/findings/*.sh; do
		n=${f##*/}
		n=${n%.sh}
		open_for $t "$f" || continue
		# (a time limit: some open findings are hangs)
		test_expect_failure "replay-$t: open finding $n" '
			timeout 10 "$fuzz"/replay-$t findings/$n
		'
	done
done

test_done
