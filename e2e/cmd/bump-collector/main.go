// Command bump-collector moves the repository's version pins: it changes
// hack/versions.yaml, then rewrites every file that carries a pin (e2e/pins:
// go.mod, the builder configs and their ocb, the control plane's default
// Kubernetes release, the README's version tables). `make bump-collector`
// runs it, then re-resolves the module graphs (go.mod and the builds' go.sum).
//
//	go run ./cmd/bump-collector -root .. -core v0.153.0 [-contrib v0.153.0] [-newest v0.166.0] [-kubernetes v1.37.3]
//
// -core moves the minimum line: core, its stable v1 release, contrib (unless
// -contrib says otherwise) and the module's own version (v0.<minor>.0). The
// contrib modules pinned apart (contrib/... in the manifest) stay where they
// are: check whether the proxy serves them on the new line, and edit the
// manifest.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/pins"
)

func main() {
	fs := flag.NewFlagSet("bump-collector", flag.ExitOnError)
	root := fs.String("root", "..", "the repository root")
	var move pins.Move
	fs.StringVar(&move.Core, "core", "", "the minimum collector line, a core release (v0.MINOR.PATCH)")
	fs.StringVar(&move.Contrib, "contrib", "", "contrib's release for the minimum line (default: -core)")
	fs.StringVar(&move.Newest, "newest", "", "the newest collector line, a core release")
	fs.StringVar(&move.NewestContrib, "newest-contrib", "", "contrib's release for the newest line")
	fs.StringVar(&move.Kubernetes, "kubernetes", "", "the control plane's default Kubernetes release")
	_ = fs.Parse(os.Args[1:])
	changed, err := pins.Bump(*root, move)
	for _, f := range changed {
		fmt.Println("rewrote", f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bump-collector:", err)
		os.Exit(1)
	}
}
