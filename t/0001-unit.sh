#!/bin/sh
# 0001-unit.sh: runs the C unit tests of lib/ (t/unit/unit-tests) and passes their TAP through.
test_description='C unit tests'
test_no_commands=t
. "$(dirname "$0")/lib.sh"

unit=$TEST_DIRECTORY/unit/unit-tests
if ! test -x "$unit"; then
	echo "Bail out! $unit is not built (run make)"
	exit 1
fi

"$unit" >unit.out 2>unit.err
unit_exit=$?

# Its results become ours, numbered the same way.
while IFS= read -r line; do
	case "$line" in
	"ok "*)
		test_count=$((test_count + 1))
		echo "$line" ;;
	"not ok "*)
		test_count=$((test_count + 1))
		test_failures=$((test_failures + 1))
		echo "$line" ;;
	"#"*)
		echo "$line" ;;
	esac
done <unit.out

test_expect_success 'unit-tests ran to the end, exit 0, no sanitizer report' '
	cat unit.err &&
	grep "^1\.\.$((test_count - 1))\$" unit.out &&
	test $unit_exit = 0 &&
	no_sanitizer_report unit.err
'

test_done
