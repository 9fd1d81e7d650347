package fleet

import (
	"fmt"
	"strings"
	"time"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/timeline"
)

// CheckDataOnlyFromLeaders returns an error if a replica exported a batch
// that it could not have produced while its group ran: each batch must be
// read after one of that replica's group spans started and at most slack after it
// ended (file exporter flush interval plus polling; 3s is ample).
func (f *Fleet) CheckDataOnlyFromLeaders(slack time.Duration) error {
	spans := timeline.GroupSpans(f.Events())
	var bad []string
	for _, r := range f.replicas {
		for _, b := range r.Batches() {
			ok := false
			for _, t := range spans {
				if t.Replica == r.Name && !b.At.Before(t.Start) && (t.End.IsZero() || !b.At.After(t.End.Add(slack))) {
					ok = true
					break
				}
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s: %s batch read at %s", r.Name, b.Signal, b.At.Format("15:04:05.000")))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("data exported outside the replica's group spans: %s", strings.Join(bad, "; "))
	}
	return nil
}
