# The unit suites again, under the sanitizers and under valgrind (issue 7).
#
#   make unit-sanitize  the unit suites and the binary they run, built with
#                       -fsanitize=address,undefined (part of make check)
#   make valgrind       the unit suites and the binary they run under
#                       valgrind memcheck: no errors, no definite or indirect
#                       leaks (not in make check: see docs/operations.md)
#
# Check forks one child per test; memcheck follows forks by itself and
# checks each child's leaks when it exits. --trace-children follows the
# exec of CS_BIN (build/.../carbonshift) but not of system tools (the
# tests' "rm -rf" of their temporary folders).

.PHONY: unit-sanitize valgrind
CHECK_TARGETS += unit-sanitize

# A build of its own (build/address,undefined/); LeakSanitizer checks every
# forked test and every run of the binary at exit.
unit-sanitize:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined unit

VALGRIND ?= valgrind
VALGRIND_FLAGS := --tool=memcheck --quiet --error-exitcode=1 \
  --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect \
  --trace-children=yes --trace-children-skip='/bin/*,/usr/bin/*' \
  --num-callers=30 --suppressions=$(CURDIR)/tests/unit/valgrind.supp

# CS_VALGRIND tells the tests to allow for memcheck's slowdown where they
# wait for the binary; CK_TIMEOUT_MULTIPLIER does the same for Check's
# per-test timeouts.
valgrind: $(TEST_BINS) $(PROG)
	$(Q)if [ -n "$(SANITIZER)" ]; then \
	  echo "make valgrind: use the plain build (SANITIZER is $(SANITIZER))"; \
	  exit 2; fi
	$(Q)set -e; for t in $(TEST_BINS); do \
	  CS_SHARED=$${CS_SHARED:-$(CURDIR)/../shared} CS_BIN=$(CURDIR)/$(PROG) \
	  CS_VALGRIND=1 CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-10} \
	  CK_VERBOSITY=$${CK_VERBOSITY:-normal} $(VALGRIND) $(VALGRIND_FLAGS) $$t; \
	done
