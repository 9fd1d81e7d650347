package harness

import (
	"fmt"
	"strings"
	"time"
)

// Say prints a line of a command's progress, prefixed with the wall-clock
// time (the commands: bench, lossless, scale).
func Say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Progress is an io.Writer that says each line written to it, e.g. the
// control plane's progress (controlplane.Options.Progress).
type Progress struct{}

func (Progress) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		Say("%s", line)
	}
	return len(b), nil
}
