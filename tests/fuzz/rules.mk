# libFuzzer targets (issue 7): one tests/fuzz/fuzz_<parser>.c per parser that
# reads the network or the user, built with clang against the library
# compiled with ASan+UBSan and fuzzer coverage into build/fuzz/
# (docs/fuzzing.md).
#
#   make fuzz              run every target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_ONLY="codec parse" FUZZ_SECONDS=600   a subset, longer
#   make fuzz-check        every target for FUZZ_CHECK_SECONDS (default 5) each;
#                          part of `make check`
#   make fuzz-build        build the targets only
#
# Each run reads the committed seeds in tests/fuzz/corpus/<target>/ but writes
# new inputs only to build/fuzz/corpus/<target>/; a crash, leak, UB report or
# timeout fails the run and leaves the input in build/fuzz/artifacts/.
# Reproduce one with build/fuzz/fuzz_<target> build/fuzz/artifacts/<file>.

.PHONY: fuzz fuzz-check fuzz-build
CHECK_TARGETS += fuzz-check

FUZZ_CC            ?= clang-14
FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 5
FUZZ_ONLY          ?=
FUZZ_DIR           := build/fuzz
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=all \
                      -fno-omit-frame-pointer
# The library's own flags, at -O1 for readable traces; the targets never
# talk to the network (cs_http_get is wrapped by fuzzutil.c).
FUZZ_CFLAGS         = $(filter-out -O2 -O1 -fsanitize=% -fno-sanitize-recover=%,\
                        $(CFLAGS_BASE)) -O1 $(FUZZ_SAN) \
                      $(pkgcflags)
FUZZ_LDFLAGS       := -fsanitize=fuzzer,address,undefined \
                      -Wl,--wrap=cs_http_get

FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES  := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_HOBJ   := $(FUZZ_DIR)/tests/fuzz/fuzzutil.o
FUZZ_LOBJS  := $(LIB_SRCS:%.c=$(FUZZ_DIR)/%.o)
FUZZ_LIB    := $(FUZZ_DIR)/libcarbonshift.a
FUZZ_RUN    := $(if $(FUZZ_ONLY),$(FUZZ_ONLY),$(FUZZ_NAMES))

$(FUZZ_DIR)/%.o: %.c | $(DEPS_STAMP)
	$(say) FUZZCC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LOBJS)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/tests/fuzz/fuzz_%.o $(FUZZ_HOBJ) $(FUZZ_LIB)
	$(say) LINK $@
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# $(1): seconds per target; $(2): libFuzzer's -seed (0: a random one).
# make check fuzzes with a fixed seed, so that the inputs it tries are the
# same on every run and CI stays repeatable; make fuzz explores afresh.
FUZZ_CHECK_SEED    ?= 1
define fuzz_run
	$(Q)set -e; failed=; for t in $(FUZZ_RUN); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs; \
	  log=$(FUZZ_DIR)/logs/$$t.log; seeds=tests/fuzz/corpus/$$t; \
	  [ -d $$seeds ] || seeds=; \
	  if $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(1) -seed=$(2) -timeout=10 \
	       -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	       $(FUZZ_DIR)/corpus/$$t $$seeds \
	       </dev/null >$$log 2>&1; then \
	    printf '  FUZZ   %-16s %s\n' $$t "$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$log | grep -o '[0-9]*$$') runs in $(1) s"; \
	  else \
	    printf '  FUZZ   %-16s FAILED (%s)\n' $$t $$log; tail -n 40 $$log; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi
endef

fuzz: $(FUZZ_RUN:%=$(FUZZ_DIR)/fuzz_%)
	$(call fuzz_run,$(FUZZ_SECONDS),0)

fuzz-check: $(FUZZ_RUN:%=$(FUZZ_DIR)/fuzz_%)
	$(call fuzz_run,$(FUZZ_CHECK_SECONDS),$(FUZZ_CHECK_SEED))

-include $(FUZZ_LOBJS:.o=.d) $(FUZZ_SRCS:%.c=$(FUZZ_DIR)/%.d) \
         $(FUZZ_HOBJ:.o=.d)
