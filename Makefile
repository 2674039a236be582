# Makefile: builds libimg.a, the img-* commands, tests and docs (GNU make, non-recursive).
#
# Targets:
#   all      lib/libimg.a, cmd/img-*, t/helper/img-poke, t/unit/unit-tests (default)
#   deps     install missing build/test dependencies with apt-get
#   check    build, then run every test in t/ with prove, and lint man pages
#   demo     build, then run the main job on a small built-in example
#   bench    side-by-side benchmarks against qemu-img and cp (t/perf/)
#   fuzz     build the libFuzzer targets of t/fuzz/ with clang and run each
#            for FUZZ_SECONDS on the generated seed corpus (t/fuzz/README)
#   install  commands to $(DESTDIR)$(PREFIX)/bin, man pages to .../share/man
#   clean    remove build outputs
# Knobs:
#   V=1      show full command lines
#   D=1      debug build: -O1 -g with AddressSanitizer and UBSan
#   VERSION  what -V/--version prints (img-map (imgtools) VERSION); set here
#            only, passed to the commands as IMG_VERSION
#   PREFIX   install prefix (default /usr/local); DESTDIR for staging
#   FUZZ_SECONDS  seconds per fuzz target (default 60); FUZZ_CC (clang)

VERSION := 0.1
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKGS := zlib libzstd nettle popt libarchive

ifeq ($(D),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
OPT := -O2 -g
endif
WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lz -lzstd -lnettle -lpopt -larchive) -lm
ALL_CFLAGS = -std=gnu11 -pthread $(OPT) $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Ilib $(PKG_CFLAGS) \
	-DIMG_VERSION='"$(VERSION)"' $(CFLAGS)
ALL_LDFLAGS = $(OPT) -pthread $(LDFLAGS)

ifneq ($(V),1)
Q = @
ifeq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
say = @printf '  %-6s %s\n' $(1) $(2);
else
say = @
endif
else
Q =
say =
endif

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(LIB_SRC:.c=.o)
CLI_SRC := cmd/cli.c cmd/cli_signal.c cmd/cli_source.c cmd/json.c cmd/batch.c
CLI_OBJ := $(CLI_SRC:.c=.o)
CMD_SRC := $(sort $(wildcard cmd/img-*.c))
CMDS := $(CMD_SRC:.c=)
UNIT_SRC := $(sort $(wildcard t/unit/*.c))
HELPERS := t/helper/img-poke t/helper/img-walk t/helper/no-ofd-locks.so
MANS := $(sort $(wildcard man/*.[15]))
# Fuzz targets: each also links with replay.c into t/fuzz/replay-NAME,
# built like everything else, which make check runs on the corpus.
FUZZ_TARGETS := read check leaks all compact stream demote
FUZZ_COMMON := t/fuzz/common.o t/fuzz/write.o
FUZZ_REPLAYS := $(FUZZ_TARGETS:%=t/fuzz/replay-%)

all: $(CMDS) $(HELPERS) t/unit/unit-tests $(FUZZ_REPLAYS)

# Rebuild everything when the flags change (e.g. switching D=1 on or off).
BUILD_FLAGS := $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)
.build-flags: FORCE
	@echo '$(BUILD_FLAGS)' | cmp -s - $@ || echo '$(BUILD_FLAGS)' > $@

%.o: %.c .build-flags
	$(call say,CC,$@)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

lib/libimg.a: $(LIB_OBJ)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

cmd/img-%: cmd/img-%.o $(CLI_OBJ) lib/libimg.a
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

t/helper/%: t/helper/%.o lib/libimg.a
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# An LD_PRELOAD shim: plain -O2, never sanitized (it must load first).
t/helper/no-ofd-locks.so: t/helper/no-ofd-locks.c
	$(call say,CC,$@)$(CC) -O2 $(WARN) -D_GNU_SOURCE -fPIC -shared -o $@ $< -ldl

t/unit/unit-tests: $(UNIT_SRC:.c=.o) lib/libimg.a
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

t/fuzz/replay-%: t/fuzz/fuzz-%.o t/fuzz/replay.o $(FUZZ_COMMON) lib/libimg.a
	$(call say,LINK,$@)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# libFuzzer builds: clang, their own objects under t/fuzz/build.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := t/fuzz/build
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=gnu11 -pthread -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link $(FUZZ_SAN) $(WARN) -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -Ilib $(PKG_CFLAGS)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/t/fuzz/fuzz-%.o \
		$(FUZZ_COMMON:%=$(FUZZ_BUILD)/%) $(FUZZ_LIB_OBJ)
	$(call say,LINK,$@)$(FUZZ_CC) -pthread -fsanitize=fuzzer $(FUZZ_SAN) \
		-o $@ $^ $(PKG_LIBS)

# Dependencies: installed only when something is missing.
DEB_PKGS := build-essential pkg-config libpopt-dev libarchive-dev zlib1g-dev \
	libzstd-dev nettle-dev qemu-utils perl groff-base strace bc xfsprogs \
	btrfs-progs e2fsprogs parallel xz-utils zstd bzip2 lz4 zip cpio p7zip-full
# Only make fuzz needs clang and its fuzzer runtime.
FUZZ_DEB_PKGS := clang libclang-rt-14-dev
deps:
	@if ./t/have-deps; then echo 'deps: everything is installed'; else \
	  echo 'deps: installing $(DEB_PKGS)'; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_PKGS); fi

check-deps:
	@./t/have-deps || $(MAKE) --no-print-directory deps

fuzz-deps: check-deps
	@if echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' | \
	  $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then :; else \
	  echo 'deps: installing $(FUZZ_DEB_PKGS)'; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(FUZZ_DEB_PKGS); fi

check: check-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./t/lint-man $(MANS)
	$(Q)cd t && prove -j2 [0-9]*.sh

demo: check-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./t/demo.sh

fuzz: fuzz-deps
	$(Q)$(MAKE) --no-print-directory all $(FUZZ_BINS)
	$(Q)./t/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: check-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./t/perf/run.sh; r=$$?; ./t/perf/zerocopy.sh || r=1; ./t/perf/streams.sh || r=1; ./t/perf/demote.sh || r=1; exit $$r

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(CMDS) $(DESTDIR)$(PREFIX)/bin/
	for m in $(MANS); do \
	  s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

clean:
	rm -f lib/*.o lib/*.d lib/libimg.a cmd/*.o cmd/*.d $(CMDS) \
		t/helper/*.o t/helper/*.d $(HELPERS) t/unit/*.o t/unit/*.d \
		t/unit/unit-tests .build-flags t/fuzz/*.o t/fuzz/*.d \
		$(FUZZ_REPLAYS)
	rm -rf t/trash.* t/perf/work $(FUZZ_BUILD) t/fuzz/seeds t/fuzz/corpus

.SECONDARY:
.PHONY: all deps check-deps fuzz-deps check demo fuzz bench install clean FORCE
-include $(wildcard lib/*.d cmd/*.d t/helper/*.d t/unit/*.d t/fuzz/*.d)
-include $(wildcard $(FUZZ_BUILD)/lib/*.d $(FUZZ_BUILD)/t/fuzz/*.d)
