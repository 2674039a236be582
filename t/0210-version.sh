#!/bin/sh
# 0210-version.sh: -V/--version on every command: one line "img-X (imgtools) VERSION", exit 0.
test_description='-V and --version'
. "$(dirname "$0")/lib.sh"

commands='img-check img-compact img-convert img-create img-info img-map'

# The one place the version is set.
version=$(sed -n 's/^VERSION := //p' "$SRC_ROOT/Makefile")

test_expect_success 'the Makefile sets a version' '
	test -n "$version" &&
	echo "$version" | grep -q "^[0-9][0-9A-Za-z.+~-]*\$"
'

for c in $commands; do
	test_expect_success "$c -V and --version: one line, exit 0" "
		$c -V >out 2>err &&
		test_line_count = 1 out &&
		echo '$c (imgtools) $version' >expect &&
		test_cmp expect out &&
		test_line_count = 0 err &&
		$c --version >out.long 2>err &&
		test_cmp expect out.long &&
		test_line_count = 0 err
	"
done

test_expect_success 'the version comes first: no image needed, other arguments ignored' '
	img-map -V >out &&
	grep "^img-map (imgtools) " out &&
	img-convert -O qcow2 --version no-such-file x.qcow2 >out &&
	grep "^img-convert (imgtools) " out &&
	! test -e x.qcow2 &&
	img-create -V -f qcow2 y.qcow2 1M >out &&
	grep "^img-create (imgtools) " out &&
	! test -e y.qcow2
'

test_expect_success '--help and --usage list it' '
	for c in $commands; do
		$c --help >help &&
		grep -e "^  -V, --version  *print the version and exit\$" help &&
		$c --usage >usage &&
		grep -e "\[-V|--version\]" usage || return 1
	done
'

test_expect_success 'every manual page lists it under OPTIONS' '
	for c in $commands; do
		sed -n "/^\\.Sh OPTIONS/,/^\\.Sh /p" "$SRC_ROOT/man/$c.1" >opts &&
		grep "^\\.It Fl V , Fl -version\$" opts || return 1
	done
'

test_expect_success 'a full standard output is an error' '
	test_expect_code 1 img-info -V >/dev/full 2>err &&
	grep "^img-info: cannot write standard output" err
'

test_done
