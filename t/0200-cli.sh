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

# usage errors say what was wrong, then print the usage
usage_says() {
	us_want_=$1
	shift
	test_expect_code 2 "$@" 2>err &&
	printf '%s\n' "$us_want_" >expect &&
	head -n 1 err >first &&
	test_cmp expect first &&
	sed -n 2p err | grep "^Usage: $1 "
}

test_expect_success 'a missing argument is named' '
	usage_says "img-convert: missing SRC" img-convert -O qcow2 &&
	usage_says "img-convert: missing DST" img-convert -O qcow2 a.qcow2 &&
	usage_says "img-create: missing FILE" img-create -f qcow2 &&
	for c in img-info img-map img-check img-compact; do
		usage_says "$c: missing IMAGE" $c || return 1
	done
'

test_expect_success 'too many arguments: the first one too many is named' '
	usage_says "img-convert: too many arguments (unexpected '"'out'"')" \
		img-convert -O qcow2 a.qcow2 b.qed out &&
	usage_says "img-create: too many arguments (unexpected '"'3'"')" \
		img-create -f qcow2 x.qcow2 1M 3 &&
	for c in img-info img-map img-check img-compact; do
		usage_says "$c: too many arguments (unexpected '"'b'"')" $c a.qcow2 b ||
		return 1
	done &&
	! test -e x.qcow2
'

test_expect_success 'a failure says its cause once' '
	test_expect_code 1 img-create -f qcow2 nodir/x.qcow2 1M 2>err &&
	echo "img-create: cannot create '"'nodir/x.qcow2'"': No such file or directory" >expect &&
	test_cmp expect err &&
	test_expect_code 1 img-convert -O qcow2 a.qcow2 nodir/x.qcow2 2>err &&
	echo "img-convert: cannot create '"'nodir/x.qcow2'"': No such file or directory" >expect &&
	test_cmp expect err
'

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
