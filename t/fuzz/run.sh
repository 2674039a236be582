#!/bin/sh
# run.sh: runs each libFuzzer target (t/fuzz/build/fuzz-NAME) for SECONDS on its corpus, seeded from make-seeds.sh; what make fuzz runs.
#
# usage: t/fuzz/run.sh SECONDS TARGET...
# Each target keeps what it learns in t/fuzz/corpus/TARGET; inputs that
# fail go to t/fuzz/artifacts/ (crash-*, leak-*, timeout-*, oom-*). The
# run goes on past a failure (libFuzzer's fork mode), so one known bug
# does not hide the others. FUZZ_FLAGS adds libFuzzer options, e.g.
# FUZZ_FLAGS=-runs=1000000. Runs under nice: the machine is shared.
set -e
secs=${1:?usage: run.sh SECONDS TARGET...}
shift
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! test -d seeds || test make-seeds.sh -nt seeds; then
	rm -rf seeds
	./make-seeds.sh seeds.new
	mv seeds.new seeds
fi
mkdir -p artifacts
for t in "$@"; do
	mkdir -p corpus/"$t"
	echo "fuzz: $t for ${secs}s"
	nice -n 10 ./build/fuzz-"$t" -fork=1 -ignore_crashes=1 \
		-ignore_timeouts=1 -ignore_ooms=1 -timeout=10 \
		-rss_limit_mb=2048 -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix=artifacts/"$t"- $FUZZ_FLAGS \
		corpus/"$t" seeds >artifacts/"$t".log 2>&1 || true
	grep -E '^#[0-9]+' artifacts/"$t".log | tail -1
	grep -E 'stat::number_of_executed_units|crashes' artifacts/"$t".log | tail -3 || true
done
ls artifacts | grep -v '\.log$' | sed 's/^/fuzz: finding: artifacts\//' || true
