// Command etcd runs the upstream etcd server unchanged; it exists so the e2e
// test can build it from the Go module proxy at a pinned release.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
