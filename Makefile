# levee — build, run and test.
#
#   make            release build: build/levee, build/levee-demo-backend, the man
#                   pages (build/man; needs scdoc, which scripts/deps.sh installs)
#   make install    the binary, the demo backend, a default config, the man pages
#                   and the systemd units (service, socket) under PREFIX (default /usr/local); DESTDIR,
#                   sbindir, sysconfdir, mandir, systemdunitdir as GNU make does.
#                   `make uninstall` removes them (not the config)
#   make package    the Debian package, built in build/deb/ (levee_VERSION_ARCH.deb)
#   make package-test  build it, lint it, install it into a scratch root and check it
#   make run        install what is missing, build, start demo backends + levee
#   make test       install what is missing, build with ASan+UBSan, run unit and
#                   integration tests; exits non-zero on any failure
#   make bench      benchmark levee beside nginx and HAProxy (see bench/README.md)
#   make lint       banned functions, the layer order (scripts/layers.sh), formatting
#   make fuzz       build the libFuzzer targets (clang): build/fuzz/fuzz_*
#   make fuzz-run   run each fuzz target for FUZZ_TIME seconds (default 60); fails on
#                   any crash, leak or sanitizer report (tests/fuzz/README.md)
#   make soak       10 minutes (SOAK_DURATION) of mixed load, chaos backends, reloads
#                   and slow clients against the ASan build; fails if memory or fds
#                   grow or a sanitizer reports anything (bench/README.md, "Soak")
#   make route-bench  what matching 100 routes costs per request (a report)
#
# EXTRA_CFLAGS, EXTRA_CPPFLAGS and EXTRA_LDFLAGS are appended to levee's own
# flags (debian/rules passes dpkg-buildflags' hardening flags through them).

CC       ?= cc
PYTHON   := /usr/bin/python3
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

# Release build goes to build/, the sanitizer build to build/asan/.
ifeq ($(SAN),1)
  B := build/asan
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDOPT := -fsanitize=address,undefined
else
  B := build
  OPT := -O2 -g
  LDOPT :=
endif

# V=1 shows the compiler command lines.
ifeq ($(V),1)
  Q :=
else
  Q = @echo "  $(if $(filter %.o,$@),CC  ,LINK) $@";
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
# A source tree without git (the copy `make package` builds from) carries the
# revision in a REVISION file.
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || cat REVISION 2>/dev/null || echo unknown)

# Installation directories (GNU conventions). The configuration lives in /etc
# when PREFIX is /usr, in PREFIX/etc otherwise; its path is compiled into
# levee as the default of -c.
PREFIX ?= /usr/local
sbindir ?= $(PREFIX)/sbin
pkglibdir ?= $(PREFIX)/lib/levee
mandir ?= $(PREFIX)/share/man
systemdunitdir ?= $(PREFIX)/lib/systemd/system
ifeq ($(PREFIX),/usr)
  sysconfdir ?= /etc
else
  sysconfdir ?= $(PREFIX)/etc
endif
CONFIG_PATH := $(sysconfdir)/levee/levee.yaml
INSTALL ?= install

CPPFLAGS := -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC) $(EXTRA_CPPFLAGS)
CFLAGS_COMMON := -std=gnu17 -pthread $(OPT) -MMD -MP $(EXTRA_CFLAGS)
CFLAGS := $(CFLAGS_COMMON) -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
LDOPT += $(EXTRA_LDFLAGS)
LIBS := -luv -lssl -lcrypto -lyaml -lhiredis -lsystemd -lpcre2-8 -lnghttp2 -lm -pthread

LEVEE_SRCS := $(shell find src -name '*.c' -not -path 'src/demo/*' -not -name main.c | sort)
# The dashboard page is compiled into the binary as a byte array.
LEVEE_OBJS := $(LEVEE_SRCS:%.c=$(B)/obj/%.o) $(B)/obj/gen/dashboard.o
LLHTTP_OBJS := $(B)/obj/llhttp/llhttp.o $(B)/obj/llhttp/api.o $(B)/obj/llhttp/http.o
DEMO_SRCS := $(shell find src/demo -name '*.c' 2>/dev/null | sort)
DEMO_OBJS := $(DEMO_SRCS:%.c=$(B)/obj/%.o)
UNIT_SRCS := $(shell find tests/unit -name '*.c' 2>/dev/null | sort)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(B)/obj/%.o)

MAN_PAGES := build/man/levee.8 build/man/levee.yaml.5

.PHONY: all run test unit integration asan bench lint fuzz fuzz-run soak clean deps format man install \
        uninstall package package-test route-bench

all: $(B)/levee $(B)/levee-demo-backend man

$(B)/levee: $(B)/obj/src/main.o $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LIBS)

$(B)/levee-demo-backend: $(DEMO_OBJS) $(B)/obj/src/core/version.o $(B)/obj/src/http/reason.o \
                         $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ -luv -lm -pthread

$(B)/unit-tests: $(UNIT_OBJS) $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ -lcriterion $(LIBS)

# Prints every configuration key from the loader's own tables (test_92_docs).
$(B)/levee-config-keys: $(B)/obj/tests/tools/config_keys.o $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LIBS)

# What routing costs per request (tests/tools/route_bench.c): a report, run by hand.
route-bench: build/route-bench
	build/route-bench

$(B)/route-bench: $(B)/obj/tests/tools/route_bench.o $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LIBS)

$(B)/obj/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/obj/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -c -o $@ $<

$(B)/gen/dashboard.c: src/admin/dashboard.html
	@mkdir -p $(@D)
	$(Q){ echo '/* Generated from src/admin/dashboard.html by the Makefile. */'; \
	  echo 'const char lv_dashboard_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; \
	  echo 'const unsigned long lv_dashboard_html_len = sizeof(lv_dashboard_html) - 1;'; } > $@

$(B)/obj/gen/dashboard.o: $(B)/gen/dashboard.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_COMMON) -c -o $@ $<

# The version object alone carries VERSION and the git revision; it is
# rebuilt whenever either changes (build/.../rev is rewritten only then).
$(B)/gen/rev: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION) $(GIT_REV)' | cmp -s - $@ || echo '$(VERSION) $(GIT_REV)' > $@

$(B)/obj/src/core/version.o: src/core/version.c $(B)/gen/rev
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -DLV_VERSION='"$(VERSION)"' -DLV_GIT_REV='"$(GIT_REV)"' $(CFLAGS) -c -o $@ $<

# main.c gets the default configuration path (sysconfdir); the same trick.
$(B)/gen/paths: FORCE
	@mkdir -p $(@D)
	@echo '$(CONFIG_PATH)' | cmp -s - $@ || echo '$(CONFIG_PATH)' > $@

$(B)/obj/src/main.o: src/main.c $(B)/gen/paths
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) -DLV_CONFIG_PATH='"$(CONFIG_PATH)"' $(CFLAGS) -c -o $@ $<

FORCE:

# llhttp is third-party code: its own (quieter) flags, never -Werror. Its
# strict mode refuses a CR not followed by LF (a bare CR ending a header
# line would otherwise end the head), chunk data without CRLF, and bytes
# after a `Connection: close` message; lenient flags stay off.
LLHTTP_FLAGS := -DLLHTTP_STRICT_MODE=1
$(B)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c Makefile
	@mkdir -p $(@D)
	$(Q)$(CC) -I$(LLHTTP_INC) $(LLHTTP_FLAGS) $(CFLAGS_COMMON) -w -c -o $@ $<

# Man pages: scdoc sources in man/.
man: $(MAN_PAGES)

build/man/%: man/%.scd
	@mkdir -p $(@D)
	@command -v scdoc >/dev/null 2>&1 || { echo "make: scdoc is needed to build the man pages:" \
	  "run scripts/deps.sh (or apt-get install scdoc)" >&2; exit 1; }
	@echo "  MAN  $@"
	@scdoc < $< > $@.tmp && mv $@.tmp $@

# The config is installed only where none is (an edited one is never
# overwritten); the unit gets the directories it runs from.
install: all
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(pkglibdir) $(DESTDIR)$(mandir)/man8 \
	  $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(sysconfdir)/levee $(DESTDIR)$(systemdunitdir)
	$(INSTALL) -m 0755 build/levee $(DESTDIR)$(sbindir)/levee
	$(INSTALL) -m 0755 build/levee-demo-backend $(DESTDIR)$(pkglibdir)/levee-demo-backend
	$(INSTALL) -m 0644 build/man/levee.8 $(DESTDIR)$(mandir)/man8/levee.8
	$(INSTALL) -m 0644 build/man/levee.yaml.5 $(DESTDIR)$(mandir)/man5/levee.yaml.5
	@if [ -e $(DESTDIR)$(CONFIG_PATH) ]; then \
	  echo "install: keeping the existing $(DESTDIR)$(CONFIG_PATH)"; \
	else \
	  echo "$(INSTALL) -m 0644 dist/levee.yaml $(DESTDIR)$(CONFIG_PATH)"; \
	  $(INSTALL) -m 0644 dist/levee.yaml $(DESTDIR)$(CONFIG_PATH); \
	fi
	sed -e 's|@sbindir@|$(sbindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g' dist/levee.service.in \
	  > $(DESTDIR)$(systemdunitdir)/levee.service
	chmod 0644 $(DESTDIR)$(systemdunitdir)/levee.service
	$(INSTALL) -m 0644 dist/levee.socket $(DESTDIR)$(systemdunitdir)/levee.socket

uninstall:
	rm -f $(DESTDIR)$(sbindir)/levee $(DESTDIR)$(pkglibdir)/levee-demo-backend \
	  $(DESTDIR)$(mandir)/man8/levee.8 $(DESTDIR)$(mandir)/man5/levee.yaml.5 \
	  $(DESTDIR)$(systemdunitdir)/levee.service $(DESTDIR)$(systemdunitdir)/levee.socket
	rmdir $(DESTDIR)$(pkglibdir) 2>/dev/null || true
	@echo "uninstall: $(DESTDIR)$(CONFIG_PATH) is left in place (remove it by hand)"

# The Debian package is built from a copy of the sources in build/deb/src
# (dpkg-buildpackage cleans its tree and writes the .deb next to it: here
# build/deb/, never this tree's parent).
package: deps
	@scripts/package.sh

package-test: package
	$(PYTHON) -m pytest -p no:cacheprovider -q -ra tests/package

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

asan:
	@$(MAKE) --no-print-directory SAN=1 build/asan/levee build/asan/levee-demo-backend build/asan/unit-tests \
	  build/asan/levee-config-keys

# Criterion runs each test in a child process whose leak report does not
# fail the test: the output is scanned for sanitizer reports instead.
unit: asan
	@set -e; out=build/asan/unit-tests.log; \
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/unit-tests --jobs 2 2>&1 | tee $$out; \
	status=$$(tail -1 $$out | grep -c 'Failing: 0 | Crashing: 0' || true); \
	if grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:' $$out; then \
	  echo "unit: sanitizer report in the output above" >&2; exit 1; fi; \
	test "$$status" = 1

integration: asan
	LEVEE_BIN=$(CURDIR)/build/asan/levee LEVEE_DEMO_BACKEND=$(CURDIR)/build/asan/levee-demo-backend \
	  $(PYTHON) -m pytest -p no:cacheprovider -q -ra tests/integration

test: deps
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

bench: deps
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory all
	bench/run.sh

lint:
	@scripts/lint.sh

fuzz: deps
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk

fuzz-run: fuzz
	@scripts/fuzz-run.sh

# Not part of `make test`: it takes 10 minutes by design.
soak: deps
	@$(MAKE) --no-print-directory asan
	@bench/soak/run.sh

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
