# libFuzzer targets (issue 7): one tests/fuzz/fuzz_<parser>.c per parser that
# reads the network or the user, built with clang against the library
# compiled with ASan+UBSan and fuzzer coverage into build/fuzz/
# (docs/fuzzing.md).
#
#   make fuzz              run every target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_ONLY="codec parse" FUZZ_SECONDS=600   a subset, longer
#   make fuzz-check        every target for a fixed number of runs from the
#                          committed seeds (about 5 s each); part of
#                          `make check`
#   make fuzz-build        build the targets only
#
# Each run reads the committed seeds in tests/fuzz/corpus/<target>/ but writes
# new inputs only under build/fuzz/ (make fuzz: corpus/<target>/, kept;
# fuzz-check: check-corpus/<target>/, emptied first); a crash, leak, UB
# report or timeout fails the run and leaves the input in
# build/fuzz/artifacts/.
# Reproduce one with build/fuzz/fuzz_<target> build/fuzz/artifacts/<file>.

.PHONY: fuzz fuzz-check fuzz-build
CHECK_TARGETS += fuzz-check

FUZZ_CC            ?= clang-14
FUZZ_SECONDS       ?= 60
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

# fuzz-check bounds each target by a number of runs, not by time, and starts
# from the committed seeds alone (its new inputs go to a scratch folder
# emptied first) with a fixed libFuzzer seed: so neither a machine's speed
# nor its earlier runs change what it does. The inputs still vary a little
# from run to run (coverage feedback differs; docs/fuzzing.md). The counts
# take about 5 s each on the 2-core reference machine; make fuzz explores
# afresh, by time, from a random seed.
FUZZ_CHECK_SEED             ?= 1
FUZZ_CHECK_RUNS_DEFAULT     ?= 20000
FUZZ_CHECK_RUNS_codec           ?= 100000
FUZZ_CHECK_RUNS_config          ?= 6000
FUZZ_CHECK_RUNS_decision        ?= 60000
FUZZ_CHECK_RUNS_electricitymaps ?= 20000
FUZZ_CHECK_RUNS_file            ?= 250000
FUZZ_CHECK_RUNS_jscan           ?= 100000
FUZZ_CHECK_RUNS_kube_list       ?= 25000
FUZZ_CHECK_RUNS_kube_watch      ?= 25000
FUZZ_CHECK_RUNS_kubeconfig      ?= 90000
FUZZ_CHECK_RUNS_node_facts      ?= 100000
FUZZ_CHECK_RUNS_parse           ?= 1000000
FUZZ_CHECK_RUNS_pod_facts       ?= 100000
FUZZ_CHECK_RUNS_ukgrid          ?= 8000
FUZZ_CHECK_RUNS_watttime        ?= 5000
fuzz_check_runs = $(or $(FUZZ_CHECK_RUNS_$(1)),$(FUZZ_CHECK_RUNS_DEFAULT))

# $(1): "target:bound" words, the bound a libFuzzer flag (-runs=N or
# -max_total_time=S); $(2): libFuzzer's -seed (0: a random one); $(3): the
# folder of each target's new inputs; $(4): "fresh" to empty it first.
define fuzz_run
	$(Q)set -e; failed=; for tb in $(1); do \
	  t=$${tb%%:*}; bound=$${tb#*:}; out=$(3)/$$t; \
	  [ "$(4)" != fresh ] || rm -rf $$out; \
	  mkdir -p $$out $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs; \
	  log=$(FUZZ_DIR)/logs/$$t.log; seeds=tests/fuzz/corpus/$$t; \
	  [ -d $$seeds ] || seeds=; \
	  start=$$(date +%s); \
	  if $(FUZZ_DIR)/fuzz_$$t $$bound -seed=$(2) -timeout=10 \
	       -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	       $$out $$seeds </dev/null >$$log 2>&1; then \
	    printf '  FUZZ   %-16s %s runs in %s s\n' $$t "$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$log | grep -o '[0-9]*$$')" $$(( $$(date +%s) - start )); \
	  else \
	    printf '  FUZZ   %-16s FAILED (%s)\n' $$t $$log; tail -n 40 $$log; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi
endef

fuzz: $(FUZZ_RUN:%=$(FUZZ_DIR)/fuzz_%)
	$(call fuzz_run,$(foreach t,$(FUZZ_RUN),$(t):-max_total_time=$(FUZZ_SECONDS)),0,$(FUZZ_DIR)/corpus,keep)

fuzz-check: $(FUZZ_RUN:%=$(FUZZ_DIR)/fuzz_%)
	$(call fuzz_run,$(foreach t,$(FUZZ_RUN),$(t):-runs=$(call fuzz_check_runs,$(t))),$(FUZZ_CHECK_SEED),$(FUZZ_DIR)/check-corpus,fresh)

-include $(FUZZ_LOBJS:.o=.d) $(FUZZ_SRCS:%.c=$(FUZZ_DIR)/%.d) \
         $(FUZZ_HOBJ:.o=.d)
