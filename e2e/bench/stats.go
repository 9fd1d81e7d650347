package bench

import (
	"math"
	"sort"
)

// Summary is the distribution of one figure over trials: min, median, p95
// (nearest rank) and max. Values are in the figure's unit (seconds, MiB, ...).
type Summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
}

// Summarize returns the Summary of values (the zero Summary if empty).
func Summarize(values []float64) Summary {
	if len(values) == 0 {
		return Summary{}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	n := len(v)
	var median float64
	if n%2 == 1 {
		median = v[n/2]
	} else {
		median = (v[n/2-1] + v[n/2]) / 2
	}
	return Summary{N: n, Min: v[0], Median: median, P95: Percentile(v, 95), Max: v[n-1]}
}

// Percentile is the nearest-rank p-th percentile of sorted values: the
// smallest value such that at least p % of the values are less or equal.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// Ratio is ours / peer for each statistic. A statistic is NaN when the
// peer's value is 0 (JSON: null).
type Ratio struct {
	Min    *float64 `json:"min"`
	Median *float64 `json:"median"`
	P95    *float64 `json:"p95"`
	Max    *float64 `json:"max"`
}

// RatioOf returns ours / peer statistic by statistic.
func RatioOf(ours, peer Summary) Ratio {
	div := func(a, b float64) *float64 {
		if b == 0 || ours.N == 0 || peer.N == 0 {
			return nil
		}
		r := a / b
		return &r
	}
	return Ratio{Min: div(ours.Min, peer.Min), Median: div(ours.Median, peer.Median), P95: div(ours.P95, peer.P95), Max: div(ours.Max, peer.Max)}
}
