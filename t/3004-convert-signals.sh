#!/bin/sh
# 3004-convert-signals.sh: img-convert and signals: SIGUSR1 prints progress and goes on, SIGXFSZ is a clear error naming the output, every other terminating signal removes the temporary output and ends the process by that signal, ignored ones stay ignored, and -n stops at a safe point leaving a consistent image.
test_description='img-convert and signals'
. "$(dirname "$0")/lib.sh"

# leftovers: temporary files img-convert makes for destinations here.
leftovers() {
	ls -A | grep '^\.d\.' || true
}

test_expect_success 'setup: a source whose conversion takes many writes' '
	qemu-img create -q -f qcow2 -o cluster_size=4k src.qcow2 16M &&
	qio qcow2 src.qcow2 "write -P 0x31 0 64k" "write -P 0x32 4M 1M" \
		"write -z 6M 64k" "write -P 0x33 8M 3M" "write -P 0x34 15M 64k" &&
	qemu-img convert -O raw src.qcow2 expect.raw
'

test_expect_success 'SIGUSR1: one progress line on stderr, the conversion goes on' '
	for fn in raw:3 qcow2:8; do
		f=${fn%:*} &&
		rm -f d.$f &&
		IMG_FAULT_WRITE=${fn#*:} IMG_FAULT_MODE=usr1 img-convert -O $f src.qcow2 d.$f 2>err &&
		test_line_count = 1 err &&
		# the writer thread may get there before the first progress report
		grep -E "^img-convert: ([0-9]+ of 16777216 bytes \([0-9]+%\)|working, no progress to report yet)\$" err &&
		qemu-img compare -q expect.raw d.$f || return 1
	done
'

test_expect_success 'SIGUSR1 to img-compact: a line, and the work goes on' '
	qemu-img convert -O qcow2 -S 0 expect.raw c.qcow2 &&
	IMG_FAULT_WRITE=1 IMG_FAULT_MODE=usr1 img-compact -q c.qcow2 2>err &&
	test_line_count = 1 err &&
	grep -E "^img-compact: ([0-9]+ of 16777216 bytes \([0-9]+%\)|working, no progress to report yet)\$" err &&
	img-check c.qcow2 >/dev/null &&
	qemu-img compare -q expect.raw c.qcow2
'

# sig_code NAME: the exit status a shell reports for death by SIGNAME
# (Linux numbers).
sig_code() {
	case $1 in
	HUP) echo 129 ;; INT) echo 130 ;; QUIT) echo 131 ;; PIPE) echo 141 ;;
	ALRM) echo 142 ;; TERM) echo 143 ;; USR2) echo 140 ;; XCPU) echo 152 ;;
	*) echo "bug in test script: sig_code $1" >&2; return 1 ;;
	esac
}

for sig in TERM INT HUP QUIT PIPE ALRM USR2 XCPU; do
	mode=$(echo $sig | tr A-Z a-z)
	test_expect_success "SIG$sig: no temporary file, no DST, death by SIG$sig" "
		for f in raw qcow2 qed; do
			rm -f d.\$f &&
			( ulimit -c 0; exec env IMG_FAULT_WRITE=3 IMG_FAULT_MODE=$mode \
				img-convert -O \$f src.qcow2 d.\$f ) 2>err
			rc=\$? &&
			test \$rc = \$(sig_code $sig) &&
			! test -e d.\$f &&
			test -z \"\$(leftovers)\" || { echo >&2 \"-O \$f: exit \$rc\"; return 1; }
		done &&
		cp expect.raw d.raw &&
		( ulimit -c 0; exec env IMG_FAULT_WRITE=3 IMG_FAULT_MODE=$mode \
			img-convert -O qcow2 src.qcow2 d.raw ) 2>err
		test \$? = \$(sig_code $sig) &&
		cmp expect.raw d.raw &&
		test -z \"\$(leftovers)\"
	"
done

test_expect_success 'img-create: a signal removes the temporary file, no image appears' '
	for f in raw qcow2 qed; do
		rm -f d.$f &&
		( exec env IMG_FAULT_WRITE=1 IMG_FAULT_MODE=term \
			img-create -q -f $f -o preallocation=full d.$f 4M ) 2>err
		test $? = 143 &&
		! test -e d.$f &&
		test -z "$(leftovers)" || return 1
	done
'

test_expect_success 'a signal the caller ignores stays ignored (nohup)' '
	rm -f d.qcow2 &&
	( trap "" USR2 HUP; IMG_FAULT_WRITE=3 IMG_FAULT_MODE=usr2 img-convert -O qcow2 src.qcow2 d.qcow2 &&
	  IMG_FAULT_WRITE=5 IMG_FAULT_MODE=hup img-convert -O raw src.qcow2 d.raw ) &&
	qemu-img compare -q expect.raw d.qcow2 &&
	cmp expect.raw d.raw
'

test_expect_success 'a file size limit (SIGXFSZ): exit 1 naming DST, no temporary file' '
	rm -f d.raw d.qcow2 &&
	( ulimit -f 2048; exec img-convert -S 0 -O raw src.qcow2 d.raw ) 2>err
	rc=$? &&
	test $rc = 1 &&
	echo "img-convert: cannot convert '"'src.qcow2'"' to '"'d.raw'"': cannot size output: File too large" >expect &&
	test_cmp expect err &&
	( ulimit -f 2048; exec img-convert -S 0 -O qcow2 src.qcow2 d.qcow2 ) 2>err
	rc=$? &&
	test $rc = 1 &&
	test_line_count = 1 err &&
	grep -E "^img-convert: cannot convert .src.qcow2. to .d.qcow2.: cannot write .* at 0x[0-9a-f]+: File too large\$" err &&
	! test -e d.raw && ! test -e d.qcow2 &&
	test -z "$(leftovers)"
'

test_expect_success 'qemu-img agrees: a file size limit is an error, not a silent death' '
	( ulimit -f 2048; exec qemu-img convert -S 0 -O raw src.qcow2 q.raw ) 2>/dev/null
	test $? = 1
'

# -n: a signal stops the copy at a safe point; the target is consistent.
for f in qcow2 qed raw; do
	test_expect_success "-n -O $f: SIGTERM at any write stops at a safe point" "
		qemu-img create -q -f $f t.$f 16M &&
		cp t.$f t.empty &&
		n=1 && stops=0 &&
		while :; do
			cp t.empty t.$f &&
			( exec env IMG_FAULT_WRITE=\$n IMG_FAULT_MODE=term \
				img-convert -n -O $f src.qcow2 t.$f ) 2>err
			rc=\$?
			test \$rc = 0 && break
			test \$rc = 143 &&
			if grep 'partly' err >/dev/null; then
				echo \"img-convert: interrupted by SIGTERM: 't.$f' is consistent but only partly written\" >expect
			else
				# past the last safe point: the copy ran to its end
				echo \"img-convert: interrupted by SIGTERM: 't.$f' was written completely before it could stop\" >expect &&
				qemu-img compare -q expect.raw t.$f
			fi &&
			test_cmp expect err &&
			if test $f != raw; then
				qemu-img check -q t.$f &&
				img-check t.$f >/dev/null
			fi &&
			img-convert -n -O $f src.qcow2 t.$f &&
			qemu-img compare -q expect.raw t.$f &&
			stops=\$((stops + 1)) &&
			n=\$((n + 1)) || { echo >&2 \"at write \$n\"; return 1; }
		done &&
		echo >&2 \"\$stops stops\" &&
		test \$stops -ge 2 &&
		qemu-img compare -q expect.raw t.$f
	"
done

test_done
