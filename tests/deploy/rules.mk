# Deployment checks that need no cluster and no container runtime.
#
#   make image-libs   the Dockerfile's runtime stage installs every shared
#                     library bin/carbonshift links

.PHONY: image-libs
CHECK_TARGETS += image-libs

image-libs: bin/carbonshift
	$(Q)tests/deploy/check-image-libs.sh bin/carbonshift

#   make version-check  the version object is rebuilt when the version
#                       changes (`make VERSION=...`, or a new commit), and
#                       left alone when it does not

.PHONY: version-check
CHECK_TARGETS += version-check

VCHECK := build/version-check
version-check: | $(DEPS_STAMP)
	$(Q)set -e; o=$(VCHECK)/carbon/util/version.o; rm -rf $(VCHECK); \
	for v in vcheck-one vcheck-two vcheck-two; do \
	  before=$$(stat -c %Y.%Z $$o 2>/dev/null || echo none); sleep 1; \
	  $(MAKE) --no-print-directory -s BUILD=$(VCHECK) VERSION=$$v $$o; \
	  grep -q "carbonshift/$$v" $$o || { echo "version-check: $$o lacks $$v"; exit 1; }; \
	  after=$$(stat -c %Y.%Z $$o); \
	  if [ $$v = vcheck-two ] && [ "$$before" = "$$after" ] && [ -n "$$seen" ]; then kept=1; fi; \
	  seen=1; \
	done; \
	[ -n "$$kept" ] || { echo "version-check: $$o rebuilt with the version unchanged"; exit 1; }; \
	rm -rf $(VCHECK); echo "version-check: ok"
