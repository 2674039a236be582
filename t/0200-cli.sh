#!/bin/sh
# 0200-cli.sh: what every command shares: --help, --usage, usage errors, write errors on standard output.
test_description='common command-line behaviour'
. "$(dirname "$0")/lib.sh"

test_expect_success 'setup' '
	qemu-img create -q -f qcow2 a.qcow2 1M
'

for c in img-info img-map img-convert; do
	test_expect_success "$c --help prints the usage and exits 0" "
		$c --help >out &&
		grep '^Usage: $c \[OPTION\.\.\.\]' out &&
		grep -e '--format=FMT' out &&
		no_sanitizer_report out
	"

	test_expect_success "$c --usage exits 0" "
		$c --usage >out &&
		grep '^Usage: $c' out
	"

	test_expect_success "$c: an unknown option is a usage error (2)" "
		test_expect_code 2 $c --no-such-option a.qcow2 2>err &&
		grep '^$c: --no-such-option: unknown option' err
	"

	test_expect_success "$c: missing arguments are a usage error (2)" "
		test_expect_code 2 $c 2>err &&
		grep '^Usage: $c' err
	"
done

test_expect_success 'a full standard output is an error, not silence' '
	test_expect_code 1 img-map --output=json a.qcow2 >/dev/full 2>err &&
	grep "^img-map: cannot write standard output" err &&
	test_expect_code 1 img-info a.qcow2 >/dev/full 2>err &&
	grep "^img-info: cannot write standard output" err
'

test_expect_success 'an unknown format name is refused' '
	test_must_fail img-info -f vmdk a.qcow2 2>err &&
	grep "^img-info: cannot open .a.qcow2.: unknown format .vmdk." err
'

test_done
