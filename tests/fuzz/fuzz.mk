# libFuzzer targets, built with clang (Debian: clang, libclang-rt-dev; scripts/deps.sh
# installs them). Run from the repository root through the Makefile:
#
#   make fuzz                       build every target: build/fuzz/fuzz_NAME
#   make fuzz-run                   run each for FUZZ_TIME seconds (scripts/fuzz-run.sh)
#
# Every tests/fuzz/fuzz_*.c is a target, found by this file: adding one is adding the
# file (with its seeds in tests/fuzz/corpus/NAME/ and, optionally, a dictionary
# tests/fuzz/NAME.dict, where NAME is the file name without fuzz_). See
# tests/fuzz/README.md.
#
# levee's sources are compiled once, with the sanitizers and libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link), into one archive that every target links
# against: a target pulls in the objects it uses, and a new target costs one compile and
# one link. -fno-sanitize-recover makes a UBSan finding abort, so that libFuzzer stops
# on it and writes the input that caused it, as it does for an ASan report.
FCC := clang
FB := build/fuzz
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

FUZZ_TARGETS := $(sort $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))

FSAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FCPPFLAGS := -D_GNU_SOURCE -Isrc -I$(LLHTTP_INC) -DLV_VERSION='"fuzz"' -DLV_GIT_REV='"fuzz"'
FCFLAGS_COMMON := -std=gnu17 -pthread -g -O1 -fno-omit-frame-pointer $(FSAN) -MMD -MP
# The same warnings as the gcc build (Makefile). Fatal in the targets, which are only
# built here; not in levee's own sources, which gcc already holds to -Werror: a warning
# only clang gives is shown without stopping the fuzzing of everything else.
FWARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
LIBS := -luv -lssl -lcrypto -lyaml -lhiredis -lsystemd -lpcre2-8 -lnghttp2 -lm -pthread

SRCS := $(shell find src -name '*.c' -not -path 'src/demo/*' -not -name main.c | sort)
OBJS := $(SRCS:%.c=$(FB)/obj/%.o) $(FB)/obj/gen/dashboard.o \
  $(FB)/obj/llhttp/llhttp.o $(FB)/obj/llhttp/api.o $(FB)/obj/llhttp/http.o

.PHONY: all
all: $(FUZZ_TARGETS:%=$(FB)/%)
	@:

$(FB)/liblevee-fuzz.a: $(OBJS)
	@rm -f $@
	@echo "  AR   $@"
	@ar rcs $@ $^

$(FB)/fuzz_%: $(FB)/obj/tests/fuzz/fuzz_%.o $(FB)/liblevee-fuzz.a
	@echo "  LINK $@"
	@$(FCC) $(FSAN) -fsanitize=fuzzer -o $@ $< $(FB)/liblevee-fuzz.a $(LIBS)

$(FB)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	@echo "  CC   $@"
	@$(FCC) $(FCPPFLAGS) -Itests $(FCFLAGS_COMMON) $(FWARN) -Werror -fsanitize=fuzzer -c -o $@ $<

$(FB)/obj/src/%.o: src/%.c
	@mkdir -p $(@D)
	@echo "  CC   $@"
	@$(FCC) $(FCPPFLAGS) $(FCFLAGS_COMMON) $(FWARN) -fsanitize=fuzzer-no-link -c -o $@ $<

# llhttp is third-party code: instrumented (it is what parses), but never -Werror;
# built in strict mode, as levee builds it (Makefile).
$(FB)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c tests/fuzz/fuzz.mk
	@mkdir -p $(@D)
	@echo "  CC   $@"
	@$(FCC) -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 $(FCFLAGS_COMMON) -w -fsanitize=fuzzer-no-link -c -o $@ $<

$(FB)/gen/dashboard.c: src/admin/dashboard.html
	@mkdir -p $(@D)
	@{ echo '/* Generated from src/admin/dashboard.html by tests/fuzz/fuzz.mk. */'; \
	  echo 'const char lv_dashboard_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; \
	  echo 'const unsigned long lv_dashboard_html_len = sizeof(lv_dashboard_html) - 1;'; } > $@

$(FB)/obj/gen/dashboard.o: $(FB)/gen/dashboard.c
	@mkdir -p $(@D)
	@$(FCC) $(FCFLAGS_COMMON) -c -o $@ $<

# Keep the objects: make would otherwise delete the targets' objects as intermediates.
.SECONDARY:

-include $(shell find $(FB)/obj -name '*.d' 2>/dev/null)
