// Command kube-apiserver runs the upstream kube-apiserver unchanged; it exists
// so the e2e test can build it from the Go module proxy at a pinned release.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
