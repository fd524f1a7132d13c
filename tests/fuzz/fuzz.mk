# libFuzzer targets (clang): `make fuzz` builds build/fuzz/fuzz_request,
# build/fuzz/fuzz_response, build/fuzz/fuzz_config, build/fuzz/fuzz_xff and build/fuzz/fuzz_route;
# run one with e.g.
#   build/fuzz/fuzz_request -max_total_time=60 tests/fuzz/corpus/request
#   build/fuzz/fuzz_xff -dict=tests/fuzz/xff.dict -max_total_time=60 tests/fuzz/corpus/xff
# Not part of `make test` (fuzzing is open-ended); seeds live in tests/fuzz/corpus.
FCC := clang
FB := build/fuzz
FFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -I/usr/share/include/llhttp \
  -DLV_VERSION='"fuzz"' -DLV_GIT_REV='"fuzz"' -DLLHTTP_STRICT_MODE=1 -std=gnu17 -pthread
LIBS := -luv -lssl -lcrypto -lyaml -lhiredis -lpcre2-8 -lm -pthread
SRCS := $(shell find src -name '*.c' -not -path 'src/demo/*' -not -name main.c | sort) \
  /usr/share/llhttp/llhttp.c /usr/share/llhttp/api.c /usr/share/llhttp/http.c

all: $(FB)/fuzz_request $(FB)/fuzz_response $(FB)/fuzz_config $(FB)/fuzz_xff $(FB)/fuzz_route

$(FB)/gen/dashboard.c: src/admin/dashboard.html
	@mkdir -p $(@D)
	@{ echo 'const char lv_dashboard_html[] = {'; od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; echo 'const unsigned long lv_dashboard_html_len = sizeof(lv_dashboard_html) - 1;'; } > $@

$(FB)/%: tests/fuzz/%.c $(SRCS) $(FB)/gen/dashboard.c
	@mkdir -p $(@D)
	$(FCC) $(FFLAGS) -w -o $@ $< $(SRCS) $(FB)/gen/dashboard.c $(LIBS)
