# levee — build, run and test.
#
#   make            release build: build/levee, build/levee-demo-backend
#   make run        install what is missing, build, start demo backends + levee
#   make test       install what is missing, build with ASan+UBSan, run unit and
#                   integration tests; exits non-zero on any failure
#   make bench      benchmark levee beside nginx and HAProxy (see bench/README.md)
#   make lint       banned functions, formatting check
#   make fuzz       build the libFuzzer targets (clang): build/fuzz/fuzz_*
#   make fuzz-run   run each fuzz target for FUZZ_TIME seconds (default 60); fails on
#                   any crash, leak or sanitizer report (tests/fuzz/README.md)
#   make soak       10 minutes (SOAK_DURATION) of mixed load, chaos backends, reloads
#                   and slow clients against the ASan build; fails if memory or fds
#                   grow or a sanitizer reports anything (bench/README.md, "Soak")

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
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CPPFLAGS := -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC)
CFLAGS_COMMON := -std=gnu17 -pthread $(OPT) -MMD -MP
CFLAGS := $(CFLAGS_COMMON) -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
LIBS := -luv -lssl -lcrypto -lyaml -lhiredis -lm -pthread

LEVEE_SRCS := $(shell find src -name '*.c' -not -path 'src/demo/*' -not -name main.c | sort)
# The dashboard page is compiled into the binary as a byte array.
LEVEE_OBJS := $(LEVEE_SRCS:%.c=$(B)/obj/%.o) $(B)/obj/gen/dashboard.o
LLHTTP_OBJS := $(B)/obj/llhttp/llhttp.o $(B)/obj/llhttp/api.o $(B)/obj/llhttp/http.o
DEMO_SRCS := $(shell find src/demo -name '*.c' 2>/dev/null | sort)
DEMO_OBJS := $(DEMO_SRCS:%.c=$(B)/obj/%.o)
UNIT_SRCS := $(shell find tests/unit -name '*.c' 2>/dev/null | sort)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(B)/obj/%.o)

.PHONY: all run test unit integration asan bench lint fuzz fuzz-run soak clean deps format

all: $(B)/levee $(B)/levee-demo-backend

$(B)/levee: $(B)/obj/src/main.o $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ $(LIBS)

$(B)/levee-demo-backend: $(DEMO_OBJS) $(B)/obj/src/core/version.o $(B)/obj/src/http/reason.o \
                         $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ -luv -lm -pthread

$(B)/unit-tests: $(UNIT_OBJS) $(LEVEE_OBJS) $(LLHTTP_OBJS)
	$(Q)$(CC) $(LDOPT) -o $@ $^ -lcriterion $(LIBS)

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

FORCE:

# llhttp is third-party code: its own (quieter) flags, never -Werror.
$(B)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) -I$(LLHTTP_INC) $(CFLAGS_COMMON) -w -c -o $@ $<

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

asan:
	@$(MAKE) --no-print-directory SAN=1 build/asan/levee build/asan/levee-demo-backend build/asan/unit-tests

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
