package lossless

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Unix(1000, 0)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// Two handovers at 10s and 20s cut the run [0s, 30s] at 15s; an Event
// belongs to the handover nearest to its creation; the lost, duplicated
// and the bound of each window are counted apart; Events created outside
// the run are not counted.
func TestTallyAttributesEachEventToTheNearestHandover(t *testing.T) {
	created := []Created{
		{"a", at(1)}, {"b", at(9.5)}, {"c", at(9.9)}, {"d", at(14.9)},
		{"e", at(15)}, {"f", at(19)}, {"g", at(25)},
		{"early", at(-1)}, {"late", at(31)}, // outside [from, to]: not counted
	}
	exports := map[string][]Export{
		"a": {{}}, "b": {{}, {}}, "c": {{}, {}, {}}, // d lost
		"e": {{}}, "f": {{}, {}}, // g lost
		"zz": {{}}, // never created
	}
	hs := []Handover{
		{Index: 1, Signal: "SIGTERM", At: at(10), Up: at(11)},
		{Index: 2, Signal: "SIGKILL", At: at(20), Up: at(24)},
	}
	ws, unknown := Tally(created, exports, hs, at(0), at(30), 2*time.Second)
	require.Len(t, ws, 2)
	assert.Equal(t, 1, unknown)
	assert.Equal(t, at(0), ws[0].From)
	assert.Equal(t, at(15), ws[0].To)
	assert.Equal(t, at(15), ws[1].From)
	assert.Equal(t, at(30), ws[1].To)

	assert.Equal(t, 4, ws[0].Created)
	assert.Equal(t, 1, ws[0].Lost)
	assert.Equal(t, []string{"d"}, ws[0].LostNames)
	assert.Equal(t, 2, ws[0].Duplicated)
	assert.Equal(t, 3, ws[0].Extra)
	assert.Equal(t, 2, ws[0].InRetryPeriod, "b and c in [8s, 10s)")

	assert.Equal(t, 3, ws[1].Created)
	assert.Equal(t, 1, ws[1].Lost)
	assert.Equal(t, 1, ws[1].Duplicated)
	assert.Equal(t, 1, ws[1].InRetryPeriod, "f in [18s, 20s)")

	term, kill := Total(ws, "SIGTERM"), Total(ws, "SIGKILL")
	assert.Equal(t, Totals{Handovers: 1, Created: 4, Lost: 1, Duplicated: 2, Extra: 3, MedianLost: 1, MedianDuplicated: 2,
		MaxLost: 1, MaxDuplicated: 2, MaxOverBound: 0, MedianGapSec: 1}, term)
	assert.Equal(t, 0, kill.MaxOverBound)
	assert.InDelta(t, 4, kill.MedianGapSec, 1e-9)
}
