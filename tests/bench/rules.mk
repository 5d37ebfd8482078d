# Load generator (issue 7): drives the real `carbonshift serve` over loopback
# with generated cluster payloads; a fake API server fills the node cache.
# Figures and how to read them: docs/performance.md.
#
#   make bench          every case: filter/prioritize x names/nodes x
#                       100/1,000/5,000 nodes x concurrency 1/16
#                       (BENCH_ARGS="--nodes 5000 --modes names" for a subset)
#   make soak           a steady rate for SOAK_SECONDS (600), sampling RSS
#   make bench-smoke    a one-second run of every case at 100 nodes that
#                       fails on any error or malformed reply (in make check)

.PHONY: bench soak bench-smoke
CHECK_TARGETS += bench-smoke

BENCH_BIN   := $(BUILD)/tests/bench/bench
BENCH_OBJS  := $(addprefix $(BUILD)/tests/bench/,bench.o payload.o refserver.o) \
               $(BUILD)/tests/unit/fake_kube.o
BENCH_ARGS  ?=
SOAK_SECONDS ?= 600
SOAK_RATE   ?= 50

# The payload generator's unit test (tests/unit/check_bench_payload.c) links
# the generator too, and so does the node facts test, which reads the
# generated nodes both ways.
$(BUILD)/tests/check_bench_payload: $(BUILD)/tests/bench/payload.o
$(BUILD)/tests/check_node_facts: $(BUILD)/tests/bench/payload.o

$(BENCH_BIN): $(BENCH_OBJS) $(LIB)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BENCH_BIN) $(PROG)
	$(Q)$(BENCH_BIN) --bin $(PROG) --json $(BUILD)/bench.json $(BENCH_ARGS)

soak: $(BENCH_BIN) $(PROG)
	$(Q)$(BENCH_BIN) --bin $(PROG) --json $(BUILD)/soak.json \
	  --soak $(SOAK_SECONDS) --rate $(SOAK_RATE) $(BENCH_ARGS)

bench-smoke: $(BENCH_BIN) $(PROG)
	$(Q)$(BENCH_BIN) --bin $(PROG) --json $(BUILD)/bench-smoke.json \
	  --nodes 100 --conc 1,4 --seconds 0.1 --min-requests 4 >/dev/null

-include $(BENCH_OBJS:.o=.d)
