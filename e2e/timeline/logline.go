package timeline

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// LogLine is one parsed line of a collector's log (zap JSON encoding, as in
// distribution/config.yaml, or the collector's default console encoding).
type LogLine struct {
	Time   time.Time      // the collector's own timestamp (zero if absent)
	Level  string         // info, warn, error, ...
	Msg    string         // the message
	Fields map[string]any // every other field
}

// String returns a field as a string ("" if absent or not a string).
func (l LogLine) String(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// Strings returns a field holding a list of strings (e.g. "receivers").
func (l LogLine) Strings(key string) []string {
	list, _ := l.Fields[key].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ParseLogLine parses a JSON or console zap line; ok is false for anything
// else (e.g. a panic trace).
func ParseLogLine(line []byte) (LogLine, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return LogLine{}, false
	}
	if line[0] == '{' {
		return parseJSONLine(line)
	}
	return parseConsoleLine(line)
}

func parseJSONLine(line []byte) (LogLine, bool) {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return LogLine{}, false
	}
	l := LogLine{Fields: m}
	l.Msg, _ = m["msg"].(string)
	l.Level, _ = m["level"].(string)
	switch ts := m["ts"].(type) {
	case string:
		l.Time, _ = time.Parse(time.RFC3339Nano, ts)
		if l.Time.IsZero() {
			l.Time, _ = time.Parse("2006-01-02T15:04:05.000Z0700", ts)
		}
	case float64:
		sec := int64(ts)
		l.Time = time.Unix(sec, int64((ts-float64(sec))*1e9))
	}
	for _, k := range []string{"msg", "level", "ts"} {
		delete(m, k)
	}
	return l, l.Msg != ""
}

// parseConsoleLine handles "ts\tlevel\tcaller\tmsg\t{json fields}" (caller
// and fields optional).
func parseConsoleLine(line []byte) (LogLine, bool) {
	parts := bytes.Split(line, []byte{'\t'})
	if len(parts) < 3 {
		return LogLine{}, false
	}
	l := LogLine{Level: string(parts[1]), Fields: map[string]any{}}
	if t, err := time.Parse("2006-01-02T15:04:05.000Z0700", string(parts[0])); err == nil {
		l.Time = t
	} else if t, err := time.Parse(time.RFC3339Nano, string(parts[0])); err == nil {
		l.Time = t
	} else if f, err := strconv.ParseFloat(string(parts[0]), 64); err == nil {
		l.Time = time.Unix(0, int64(f*1e9))
	} else {
		return LogLine{}, false
	}
	rest := parts[2:]
	if last := rest[len(rest)-1]; len(last) > 0 && last[0] == '{' {
		_ = json.Unmarshal(last, &l.Fields)
		rest = rest[:len(rest)-1]
	}
	if len(rest) == 0 {
		return LogLine{}, false
	}
	l.Msg = string(rest[len(rest)-1]) // caller, when present, comes first
	return l, true
}
