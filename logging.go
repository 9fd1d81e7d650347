package leaderreceivercreator

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The lines of internal/logmsg mark the block's transitions, and operators
// and the e2e harness parse them: each one must reach the log. The collector
// samples its logs by default (the first 10 lines of a message per 10 s, then
// every 100th), keyed by the message alone, so with many blocks on one
// collector the transitions of all but ten would be dropped. The runner logs
// through unsampled; the sub-receivers' loggers keep the collector's sampling.

// unsampled returns l, writing every entry its level enables past any
// sampler in its core.
func unsampled(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return unsampledCore{c} }))
}

// unsampledCore decides in Check by level alone, then writes through the
// cores below with Write. zap's sampler decides in its Check only, and the
// collector's own core (a tee to its logger provider) writes to both of its
// cores in Write, so an entry written there is neither sampled nor lost.
type unsampledCore struct{ zapcore.Core }

func (c unsampledCore) With(fields []zapcore.Field) zapcore.Core {
	return unsampledCore{c.Core.With(fields)}
}

func (c unsampledCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}
