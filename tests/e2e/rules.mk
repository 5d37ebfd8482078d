# End-to-end suite (issue 5): real kube-apiserver, etcd, kube-scheduler and
# helm, built from the Go module proxy and cached under
# ${XDG_CACHE_HOME:-~/.cache}/carbonshift-e2e/ (docs/e2e.md).
#
#   make e2e            run the end-to-end test (E2E_ONLY="placement-zone ..." for a subset)
#   make chart-check    helm lint + helm template of the chart with every value set
#   make e2e-components build (or reuse) the cached components only
#   make manifests      render plain manifests from the chart into deploy/manifests/

.PHONY: e2e chart-check e2e-components manifests
CHECK_TARGETS += chart-check e2e

# The service is built when its sources exist; until then the runner reports
# the carbonshift scenarios as skipped.
E2E_BIN := $(if $(wildcard cmd/carbonshift/main.c),bin/carbonshift)

e2e-components:
	$(Q)tests/e2e/build-components.sh

e2e: $(E2E_BIN) | $(DEPS_STAMP)
	$(Q)CS_SHARED=$${CS_SHARED:-$(CURDIR)/../shared} CS_BIN=$(CURDIR)/bin/carbonshift \
	  tests/e2e/run-e2e.sh

chart-check:
	$(Q)tests/e2e/chart-check.sh

# Plain manifests for users without Helm (deploy/README.md); they use
# Secrets the user creates, so no private key is rendered into the tree.
MANIFEST_NS ?= carbonshift
manifests:
	$(Q)deploy/render-manifests.sh $(MANIFEST_NS)
