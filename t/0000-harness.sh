#!/bin/sh
# 0000-harness.sh: the test harness itself (t/lib.sh) behaves as documented.
test_description='test harness'
test_no_commands=t
. "$(dirname "$0")/lib.sh"

test_expect_success 'test_must_fail accepts an ordinary failure' '
	test_must_fail false &&
	test_must_fail sh -c "exit 2" &&
	test_must_fail sh -c "exit 124"
'

test_expect_success 'test_must_fail rejects success, signals, sanitizers, missing commands' '
	! test_must_fail true &&
	! test_must_fail sh -c "kill -ABRT \$\$" &&
	! test_must_fail sh -c "kill -SEGV \$\$" &&
	! test_must_fail sh -c "exit $SAN_EXIT" &&
	! test_must_fail ./no-such-command &&
	! test_must_fail sh -c "exit 126"
'

test_expect_success 'test_expect_code wants the exact code' '
	test_expect_code 3 sh -c "exit 3" &&
	! test_expect_code 3 sh -c "exit 1" &&
	! test_expect_code 1 true
'

test_expect_success 'sanitizers are told to abort' '
	case "$ASAN_OPTIONS" in *abort_on_error=1*) ;; *) false ;; esac &&
	case "$UBSAN_OPTIONS" in *halt_on_error=1*) ;; *) false ;; esac
'

test_expect_success 'built commands come first in PATH' '
	case "$PATH" in "$SRC_ROOT/cmd:$TEST_DIRECTORY/helper:"*) ;; *) false ;; esac
'

test_expect_success 'map_normalise merges agreeing neighbours only' '
	cat >in.json <<-\EOT &&
	[{ "start": 0, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4096},
	{ "start": 512, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4608},
	{ "start": 1024, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 8192},
	{ "start": 1536, "length": 512, "depth": 0, "present": false, "zero": true, "data": false},
	{ "start": 2048, "length": 1024, "depth": 0, "present": false, "zero": true, "data": false},
	{ "start": 3072, "length": 1024, "depth": 1, "present": false, "zero": true, "data": false}]
	EOT
	cat >expect <<-\EOT &&
	start=0 length=1024 data=true,depth=0,present=true,zero=false offset=4096
	start=1024 length=512 data=true,depth=0,present=true,zero=false offset=8192
	start=1536 length=1536 data=false,depth=0,present=false,zero=true
	start=3072 length=1024 data=false,depth=1,present=false,zero=true
	EOT
	map_normalise <in.json >actual &&
	test_cmp expect actual
'

test_expect_success 'map_normalise drops empty extents and offsets of absent ones' '
	cat >in.json <<-\EOT &&
	[{ "start": 0, "length": 0, "depth": 0, "present": false, "zero": false, "data": false},
	{ "start": 0, "length": 4096, "depth": 0, "present": false, "zero": true, "data": false, "offset": 327680},
	{ "start": 4096, "length": 4096, "depth": 0, "present": false, "zero": true, "data": false}]
	EOT
	echo "start=0 length=8192 data=false,depth=0,present=false,zero=true" >expect &&
	map_normalise <in.json >actual &&
	test_cmp expect actual
'

test_expect_success 'map_is_maximal finds extents that could be merged' '
	cat >merged.json <<-\EOT &&
	[{ "start": 0, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4096},
	{ "start": 512, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 8192},
	{ "start": 1024, "length": 512, "depth": 0, "present": false, "zero": true, "data": false, "offset": 9000},
	{ "start": 1536, "length": 512, "depth": 0, "present": false, "zero": true, "data": false, "offset": 12000}]
	EOT
	map_is_maximal <merged.json &&
	cat >split.json <<-\EOT &&
	[{ "start": 0, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4096},
	{ "start": 512, "length": 512, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4608}]
	EOT
	test_must_fail map_is_maximal <split.json
'

test_expect_success 'map_normalise rejects garbage' '
	echo "not json" >bad.json &&
	test_must_fail map_normalise <bad.json
'

test_expect_success 'json_get reads nested fields' '
	cat >in.json <<-\EOT &&
	[{"format": "qcow2", "dirty-flag": false, "virtual-size": 1048576,
	  "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}},
	  "snapshots": [{"id": "1", "name": "s"}]}]
	EOT
	cat >expect <<-\EOT &&
	0.format=qcow2
	0.dirty-flag=false
	0.virtual-size=1048576
	0.format-specific.data.compat=1.1
	0.snapshots.0.name=s
	0.encrypted=<absent>
	1.format=<absent>
	EOT
	json_get in.json 0.format 0.dirty-flag 0.virtual-size \
		0.format-specific.data.compat 0.snapshots.0.name \
		0.encrypted 1.format >actual &&
	test_cmp expect actual
'

test_expect_success 'a nested script reports failures, TODOs and skips in TAP' '
	cat >nested.sh <<-EOT &&
	#!/bin/sh
	test_no_commands=t
	. "$TEST_DIRECTORY/lib.sh"
	test_expect_success "passes" "true"
	test_expect_success "fails" "echo some output; false"
	test_expect_failure "known" "false"
	test_expect_success NOPE "skipped" "false"
	test_done
	EOT
	test_expect_code 1 sh nested.sh >out &&
	grep "^ok 1 - passes\$" out &&
	grep "^not ok 2 - fails\$" out &&
	grep "^# some output\$" out &&
	grep "^not ok 3 - known # TODO known breakage\$" out &&
	grep "^ok 4 # skip skipped (missing NOPE)\$" out &&
	grep "^1\\.\\.4\$" out &&
	test -d trash.nested
'

test_expect_success 'a passing nested script removes its trash' '
	cat >good.sh <<-EOT &&
	#!/bin/sh
	test_no_commands=t
	. "$TEST_DIRECTORY/lib.sh"
	test_expect_success "passes" "echo x >file"
	test_done
	EOT
	sh good.sh >out &&
	test_cmp - out <<-\EOT &&
	ok 1 - passes
	1..1
	EOT
	! test -e trash.good &&
	! test -e trash.good.log
'

test_done
