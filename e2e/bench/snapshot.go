package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Snapshot copies the binary at path into dir (as dir/<impl>-<base name>)
// and describes it.
func Snapshot(impl, path, dir string) (Binary, error) {
	b := Binary{Impl: impl, Path: path, Copy: filepath.Join(dir, impl+"-"+filepath.Base(path))}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err
	}
	in, err := os.Open(path)
	if err != nil {
		return b, err
	}
	defer func() { _ = in.Close() }() // read only
	fi, err := in.Stat()
	if err != nil {
		return b, err
	}
	b.Modified = fi.ModTime()
	out, err := os.OpenFile(b.Copy, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return b, err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		return b, errors.Join(err, out.Close())
	}
	if err := out.Close(); err != nil {
		return b, err
	}
	b.SHA256 = hex.EncodeToString(h.Sum(nil))
	return b, nil
}

// GitDescribe is `git describe --always --dirty` in dir, or "" without git.
func GitDescribe(dir string) string {
	out, err := exec.Command("git", "-C", dir, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
