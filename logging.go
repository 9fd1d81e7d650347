package leaderreceivercreator

import (
	"strconv"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The lines of internal/logmsg mark the block's transitions, and operators
// and the e2e harness parse them: each one must reach the log. The collector
// samples its logs by default (the first 10 lines of a message per 10 s, then
// every 100th), keyed by the message alone, so with many blocks on one
// collector the transitions of all but ten would be dropped. The runner logs
// through unsampled; the sub-receivers' loggers keep the collector's sampling.

// unsampled returns l, whose entries a sampler in its core cannot drop.
func unsampled(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return unsampledCore{c} }))
}

// probes are the keys under which unsampledCore asks again: a sampler
// counts entries by a hash of their message (zap's: one of 4096 counters
// per level, reset every tick), so an entry it dropped is asked for under
// other messages, whose counters another hot message would all have to
// share for it to be dropped again.
var probes = func() []string {
	p := make([]string, 16)
	for i := range p {
		p[i] = "\x00" + strconv.Itoa(i)
	}
	return p
}()

// unsampledCore lets the cores below decide as they always do, in Check
// (levels, hooks, tees and the collector's tee to its logger provider
// included). Only when they drop an enabled entry, which only a sampler
// does, it asks again with the message followed by a probe, and writes the
// entry with its own message: the sampler counted the probe, and nothing
// below sees it. It must be the outermost core (zap.WrapCore of the
// logger), which is asked with no entry checked yet.
type unsampledCore struct{ zapcore.Core }

func (c unsampledCore) With(fields []zapcore.Field) zapcore.Core {
	return unsampledCore{c.Core.With(fields)}
}

func (c unsampledCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	out := c.Core.Check(ent, ce)
	if out != nil || ce != nil || !c.Enabled(ent.Level) {
		return out
	}
	for _, p := range probes {
		probe := ent
		probe.Message = ent.Message + p
		if out := c.Core.Check(probe, nil); out != nil {
			out.Message = ent.Message // the CheckedEntry's Entry
			return out
		}
	}
	return nil
}
