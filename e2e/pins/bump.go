package pins

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var release = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-\S+)?$`)

// Move is a change of pins: the empty ones stay.
type Move struct {
	// Core moves the minimum line: core, its stable v1 release, contrib
	// (unless Contrib is given) and the module's own version (v0.MINOR.0).
	// The contrib modules pinned apart (contrib/...) stay.
	Core          string
	Contrib       string
	Newest        string // the newest line: newest_core, newest_stable and newest_contrib (unless NewestContrib is given)
	NewestContrib string
	Kubernetes    string
}

// Bump writes move into root's manifest, then rewrites every file that
// disagrees with it (Apply); it returns the files it changed.
func Bump(root string, move Move) ([]string, error) {
	for name, v := range map[string]string{"core": move.Core, "contrib": move.Contrib, "newest": move.Newest, "newest contrib": move.NewestContrib, "kubernetes": move.Kubernetes} {
		if v != "" && !release.MatchString(v) {
			return nil, fmt.Errorf("%s: %q is not a release (vMAJOR.MINOR.PATCH)", name, v)
		}
	}
	m, err := LoadManifest(root)
	if err != nil {
		return nil, err
	}
	if move.Core != "" {
		if err := setLine(m, Minimum, move.Core); err != nil {
			return nil, fmt.Errorf("core: %w", err)
		}
		if line := strings.Join(strings.Split(move.Core, ".")[:2], "."); !strings.HasPrefix(m.Get("module"), line+".") {
			m.Set("module", line+".0") // a new minimum line: a new minor
		}
		if move.Contrib == "" {
			move.Contrib = move.Core
		}
	}
	if move.Newest != "" {
		if err := setLine(m, Newest, move.Newest); err != nil {
			return nil, fmt.Errorf("newest: %w", err)
		}
		if move.NewestContrib == "" {
			move.NewestContrib = move.Newest
		}
	}
	for key, v := range map[string]string{"contrib": move.Contrib, "newest_contrib": move.NewestContrib, "kubernetes": move.Kubernetes} {
		if v != "" {
			m.Set(key, v)
		}
	}
	if err := os.WriteFile(filepath.Join(root, ManifestPath), m.Bytes(), 0o644); err != nil { //nolint:gosec // a source file
		return nil, err
	}
	changed, err := Apply(root, m)
	if err != nil {
		return changed, err
	}
	bad, err := Check(root, m)
	if err != nil {
		return changed, err
	}
	if len(bad) > 0 {
		return changed, fmt.Errorf("still disagreeing with the manifest:\n%s", strings.Join(bad, "\n"))
	}
	return append([]string{ManifestPath}, changed...), nil
}

// setLine moves line l to core release core and its stable v1 release.
func setLine(m *Manifest, l Line, core string) error {
	stable, err := StableFor(core)
	if err != nil {
		return err
	}
	m.Set(string(l)+"core", core)
	m.Set(string(l)+"stable", stable)
	return nil
}
