package audit

import "time"

// LeaseRequests is what one user asked of Leases in a window, as the API
// server saw it: the cost of leader election (the report's P4).
type LeaseRequests struct {
	Writes  int `json:"writes"`  // create, update, patch, delete received in the window
	Reads   int `json:"reads"`   // get, list received in the window
	Watches int `json:"watches"` // watches opened in the window
	// OpenWatches is the mean number of the user's Lease watches open
	// during the window (1 for one watch open throughout, whenever it was
	// opened; a watch still open at the end of the log counts as open).
	OpenWatches float64 `json:"open_watches"`
}

// CountLeaseRequests counts user's requests on Leases (Request.Lease)
// received in window, by kind, and the mean number of its Lease watches
// open during it.
func CountLeaseRequests(reqs []Request, user string, window Interval) LeaseRequests {
	var c LeaseRequests
	var open time.Duration
	for _, r := range reqs {
		if r.User != user || !r.Lease() {
			continue
		}
		if r.Verb == "watch" {
			end := r.Ended
			if end.IsZero() || end.After(window.End) {
				end = window.End
			}
			start := r.Received
			if start.Before(window.Start) {
				start = window.Start
			}
			if end.After(start) {
				open += end.Sub(start)
			}
		}
		if r.Received.Before(window.Start) || r.Received.After(window.End) {
			continue
		}
		switch r.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			c.Writes++
		case "get", "list":
			c.Reads++
		case "watch":
			c.Watches++
		}
	}
	if d := window.Duration(); d > 0 {
		c.OpenWatches = float64(open) / float64(d)
	}
	return c
}
