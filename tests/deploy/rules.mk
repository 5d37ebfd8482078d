# Deployment checks that need no cluster and no container runtime.
#
#   make image-libs   the Dockerfile's runtime stage installs every shared
#                     library bin/carbonshift links

.PHONY: image-libs
CHECK_TARGETS += image-libs

image-libs: bin/carbonshift
	$(Q)tests/deploy/check-image-libs.sh bin/carbonshift
