#!/bin/sh
# 3050-convert-batch.sh: img-convert -t DIR SRC... converts many images, -j at a time, with a status line each, a summary, JSON lines, skipping finished outputs; the GNU parallel recipe of the README; --progress=json.
test_description='img-convert batches and progress for scripts'
. "$(dirname "$0")/lib.sh"

# Four qcow images with different data, one file that is not an image.
test_expect_success 'sources' '
	for i in 1 2 3 4; do
		qemu-img create -q -f qcow a$i.qcow 16M &&
		qio qcow a$i.qcow "write -P $i 0 1M" "write -P 1$i 8M 64k" ||
		return 1
	done &&
	head -c 4096 /dev/zero >bad.qcow &&
	printf "QFI\373\000\000\000\001" | dd of=bad.qcow conv=notrunc 2>/dev/null &&
	mkdir out
'

# converted_ok N...: out/aN.qed is a clean QED image reading as aN.qcow.
converted_ok() {
	for n in "$@"; do
		qemu-img check -q out/a$n.qed &&
		qemu-img compare -q a$n.qcow out/a$n.qed || return 1
	done
}

test_expect_success 'a batch with a broken input: the rest converts, exit 1, a line each and a summary' '
	test_expect_code 1 img-convert -O qed -t out -j 2 a1.qcow a2.qcow bad.qcow a3.qcow a4.qcow >st 2>err &&
	converted_ok 1 2 3 4 &&
	test_line_count = 6 st &&
	for n in 1 2 3 4; do
		grep -E "^a$n.qcow -> out/a$n.qed: converted \([0-9.]+ s\)$" st || return 1
	done &&
	grep -E "^bad.qcow -> out/bad.qed: failed \([0-9.]+ s\): cannot open .bad.qcow.: image size 0 too small \(must be at least 2 bytes\)$" st &&
	tail -1 st >summary &&
	echo "5 images: 4 converted, 0 with warnings, 0 skipped, 1 failed" >want &&
	test_cmp want summary &&
	test ! -s err &&
	ls -A out >ls.out &&
	printf "%s\n" a1.qed a2.qed a3.qed a4.qed >ls.want &&
	test_cmp ls.want ls.out
'

test_expect_success 'finished outputs are skipped; --force converts them again' '
	img-convert -O qed -t out a1.qcow a2.qcow >st &&
	grep -E "^a1.qcow -> out/a1.qed: skipped \([0-9.]+ s\): .out/a1.qed. is complete already \(--force converts again\)$" st &&
	grep "^2 images: 0 converted, 0 with warnings, 2 skipped, 0 failed$" st &&
	img-convert -O qed -t out --force -j 1 a1.qcow a2.qcow >st &&
	grep "^2 images: 2 converted, 0 with warnings, 0 skipped, 0 failed$" st &&
	converted_ok 1 2
'

test_expect_success 'an unfinished file of the output name is converted over' '
	head -c 70000 out/a3.qed >cut.qed && mv cut.qed out/a3.qed &&
	echo junk >out/a4.qed &&
	img-convert -O qed -t out a3.qcow a4.qcow >st &&
	grep "^2 images: 2 converted, 0 with warnings, 0 skipped, 0 failed$" st &&
	converted_ok 3 4
'

test_expect_success 'compressed sources: read once, skipped when the output is newer' '
	qemu-img convert -O raw a1.qcow z1.raw &&
	xz -1 -c z1.raw >z1.raw.xz && gzip -1 -c z1.raw >z2.raw.gz &&
	img-convert -O qed -t out z1.raw.xz z2.raw.gz >st 2>err &&
	grep "^2 images: 2 converted, 0 with warnings, 0 skipped, 0 failed$" st &&
	test ! -s err &&
	qemu-img compare -q z1.raw out/z1.qed &&
	qemu-img compare -q z1.raw out/z2.qed &&
	img-convert -O qed -t out z1.raw.xz z2.raw.gz >st 2>err &&
	grep "^2 images: 0 converted, 0 with warnings, 2 skipped, 0 failed$" st &&
	touch -d "+1 hour" z2.raw.gz &&
	img-convert -O qed -t out z1.raw.xz z2.raw.gz >st 2>err &&
	grep "^2 images: 1 converted, 0 with warnings, 1 skipped, 0 failed$" st &&
	grep -q "^z2.raw.gz -> out/z2.qed: converted" st
'

test_expect_success '--output=json: one line per image' '
	test_expect_code 1 img-convert -O qed -t out --force --output=json a1.qcow bad.qcow >st &&
	test_line_count = 2 st &&
	perl -MJSON::PP -ne "
		my \$r = decode_json(\$_);
		print \"\$r->{source} \$r->{target} \$r->{status}\",
		      (\$r->{message} ? \" \$r->{message}\" : \"\"), \"\n\";
		die \"no seconds\" unless \$r->{seconds} =~ /^[0-9.]+\$/;
	" st | sort >got &&
	printf "%s\n" "a1.qcow out/a1.qed converted" \
		"bad.qcow out/bad.qed failed cannot open '\''bad.qcow'\'': image size 0 too small (must be at least 2 bytes)" >want &&
	test_cmp want got
'

test_expect_success 'usage errors: -n, clashing names, -j without -t, a missing directory' '
	test_expect_code 2 img-convert -O qed -t out -n a1.qcow 2>err &&
	grep -x "img-convert: -t and -n cannot go together" err &&
	mkdir other && cp a1.qcow other/a1.qcow2 &&
	test_expect_code 2 img-convert -O qed -t out a1.qcow other/a1.qcow2 2>err &&
	grep -x "img-convert: '\''a1.qcow'\'' and '\''other/a1.qcow2'\'' would both become '\''out/a1.qed'\''" err &&
	test_expect_code 2 img-convert -O qed -j 2 a1.qcow x.qed 2>err &&
	grep -x "img-convert: -j, --force and --output go with -t DIR" err &&
	! test -e x.qed &&
	test_expect_code 1 img-convert -O qed -t nowhere a1.qcow 2>err &&
	grep -x "img-convert: cannot convert into '\''nowhere'\'': No such file or directory" err
'

test_expect_success 'a batch whose source is also a target is refused for that image only' '
	mkdir same && cp a1.qcow same/a1.qcow && cp a2.qcow same/a2.qcow &&
	test_expect_code 1 img-convert -O qcow -t same --force same/a1.qcow a2.qcow >st &&
	grep -E "^same/a1.qcow -> same/a1.qcow: failed \([0-9.]+ s\): .same/a1.qcow. is the source: refusing to overwrite it$" st &&
	grep -E "^a2.qcow -> same/a2.qcow: converted" st &&
	cmp a1.qcow same/a1.qcow
'

test_expect_success 'SIGTERM to a batch: its jobs stop and leave no half-written file' '
	mkdir big sig &&
	for i in 1 2 3; do
		head -c $((48 << 20)) /dev/urandom >big/b$i.raw || return 1
	done &&
	{ img-convert -c -O qcow2 -t sig -j 2 big/b1.raw big/b2.raw big/b3.raw >st 2>err & } &&
	pid=$! &&
	sleep 0.5 &&
	kill -TERM $pid &&
	{ wait $pid; echo $? >code; } &&
	test "$(cat code)" = 143 &&
	sleep 0.5 &&
	for f in $(ls -A sig); do
		case $f in .*) echo "debris: $f"; return 1 ;; esac
		qemu-img check -q sig/$f && qemu-img compare -q big/${f%.qcow2}.raw sig/$f ||
		return 1
	done
'

test_expect_success 'the README recipe for several hosts, with parallel --sshlogin : (this one)' '
	mkdir par && cp a1.qcow a2.qcow a3.qcow par/ &&
	(cd par &&
	parallel --will-cite --sshlogin : --transferfile {} --return {.}.qed \
		--cleanup "$SRC_ROOT/cmd/img-convert" -O qed {} {.}.qed \
		::: a1.qcow a2.qcow a3.qcow 2>err &&
	for n in 1 2 3; do
		qemu-img check -q a$n.qed &&
		qemu-img compare -q a$n.qcow a$n.qed || return 1
	done)
'

test_expect_success '--progress=json: lines a script can read, the last one complete' '
	qemu-img create -q -f qcow2 p.qcow2 64M &&
	qio qcow2 p.qcow2 "write -P 5 0 8M" &&
	img-convert --progress=json -O qed p.qcow2 p.qed 2>prog &&
	perl -MJSON::PP -ne "
		my \$r = decode_json(\$_);
		die \"bad line\" unless defined \$r->{done} && defined \$r->{total} &&
			defined \$r->{bytes_written};
		\$last = \$r;
		END { die \"no lines\" unless \$last;
		      print \"\$last->{done} \$last->{total}\n\";
		      die \"too few bytes\" if \$last->{bytes_written} < 8 << 20; }
	" prog >last &&
	echo "67108864 67108864" >want &&
	test_cmp want last &&
	img-check --progress=json p.qcow2 >/dev/null 2>prog &&
	tail -1 prog | grep "^{\"done\": [0-9]*, \"total\": [0-9]*, \"bytes_written\": [0-9]*}$" &&
	test_expect_code 2 img-compact --progress=xml p.qcow2 2>err &&
	grep -x "img-compact: invalid progress format '\''xml'\'': human or json" err
'

test_expect_success '-p draws the bar on stderr even when it is not a terminal, as qemu-img does' '
	rm -f p.qed &&
	img-convert -p -O qed p.qcow2 p.qed 2>bar &&
	tr "\r" "\n" <bar | grep -x "    (100.00/100%)" &&
	img-convert -p -q -O qed p.qcow2 p2.qed 2>bar &&
	test ! -s bar
'

test_done
