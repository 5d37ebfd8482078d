# carbonshift: a carbon-aware scheduler extender for Kubernetes.
#
#   make              build bin/carbonshift
#   make run          build and start the service on its embedded defaults
#   make check        build and run every test (what CI runs), the unit
#                     suites also under ASan+UBSan (tests/unit/rules.mk)
#   make SANITIZER=address check   the same under AddressSanitizer
#   make valgrind     the unit suites under valgrind memcheck, no leaks
#   make V=1 ...      show the commands
#
# Sources are discovered, not listed: a new module is a new .c file in
# carbon/, carbon/*/, scheduler/ or cmd/carbonshift/, and a new unit test is
# tests/unit/check_<module>.c. Other test suites plug in through
# tests/*/rules.mk, which append to CHECK_TARGETS.

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SANITIZER ?=
LISTEN    ?= 127.0.0.1:8080

CC        ?= cc
BUILD     := build/$(if $(SANITIZER),$(SANITIZER),release)
PKGS      := libmicrohttpd libcjson libcurl gnutls yaml-0.1 openssl

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -O2 -pthread \
  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
  -Wno-unused-parameter -fno-strict-aliasing -I.
ifneq ($(SANITIZER),)
  CFLAGS_BASE += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer \
    -fno-sanitize-recover=all -O1
  LDFLAGS     += -fsanitize=$(SANITIZER)
endif

# pkg-config is consulted only once the dependencies are installed.
pkgcflags = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
pkglibs   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lglpk -lm -pthread
CFLAGS    += $(CFLAGS_BASE) $(pkgcflags)
LDLIBS    += $(pkglibs)

LIB_SRCS  := $(sort $(wildcard carbon/util/*.c carbon/*.c carbon/*/*.c \
                                scheduler/*.c cmd/carbonshift/*.c))
LIB_SRCS  := $(filter-out cmd/carbonshift/main.c,$(LIB_SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ  := $(BUILD)/cmd/carbonshift/main.o
LIB       := $(BUILD)/libcarbonshift.a
PROG      := $(BUILD)/carbonshift

TEST_SRCS   := $(sort $(wildcard tests/unit/check_*.c))
TEST_HELPER := $(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c))
TEST_BINS   := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HOBJS  := $(TEST_HELPER:%.c=$(BUILD)/%.o)

DEPS_STAMP  := build/.deps-$(shell cksum < deploy/install-deps.sh | cut -d' ' -f1)

ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n'
endif

.PHONY: all run check unit deps clean format
# Test objects are intermediate files to make; keep them so reruns relink
# only what changed.
.SECONDARY:
all: bin/carbonshift

CHECK_TARGETS := unit
-include $(wildcard tests/*/rules.mk)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): deploy/install-deps.sh
	$(Q)deploy/install-deps.sh test
	$(Q)mkdir -p build && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	$(say) CC $<
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The version lives in one object, rebuilt when `git describe` changes: a
# -D in every object's flags left objects built at another commit saying
# another version (make does not rebuild on a changed flag).
VERSION_STAMP := $(BUILD)/version.stamp
$(VERSION_STAMP): FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo '$(VERSION)' | cmp -s - $@ 2>/dev/null || echo '$(VERSION)' >$@
$(BUILD)/carbon/util/version.o: CFLAGS += -DCS_VERSION='"$(VERSION)"'
$(BUILD)/carbon/util/version.o: $(VERSION_STAMP)
.PHONY: FORCE
FORCE:

$(LIB): $(LIB_OBJS)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(PROG): $(MAIN_OBJ) $(LIB)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/carbonshift: $(PROG)
	$(Q)mkdir -p bin && cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_HOBJS) $(LIB)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs check) \
	  $(shell pkg-config --libs libnghttp2)

run: bin/carbonshift
	@echo "carbonshift $(VERSION): serving on http://$(LISTEN) (Ctrl-C stops it)"
	@echo "Try:  curl -s -H 'Content-Type: application/json' \\"
	@echo "        --data @../shared/fixtures/extender/prioritize-nodes.request.json \\"
	@echo "        http://$(LISTEN)/prioritize"
	@echo "      curl -s http://$(LISTEN)/metrics"
	@exec bin/carbonshift serve --listen $(LISTEN)

# Unit and HTTP tests: each check_*.c is one Check runner. They find the
# shared fixtures through CS_SHARED (default ../shared) and the binary under
# test through CS_BIN.
unit: $(TEST_BINS) $(PROG)
	$(Q)set -e; for t in $(TEST_BINS); do \
	  CS_SHARED=$${CS_SHARED:-$(CURDIR)/../shared} CS_BIN=$(CURDIR)/$(PROG) \
	  CK_VERBOSITY=$${CK_VERBOSITY:-normal} $$t; done

check: $(CHECK_TARGETS)

format:
	$(Q)deploy/install-deps.sh format
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_BINS:%=%.d) \
         $(TEST_SRCS:%.c=$(BUILD)/%.d) $(TEST_HOBJS:.o=.d)
