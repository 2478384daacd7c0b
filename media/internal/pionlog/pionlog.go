// Package pionlog routes Pion's leveled logs into log/slog, so the SFU's and the test peers'
// WebRTC internals log with the same structured fields (session, participant) as the rest of
// Assist instead of printing to stderr.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory makes Pion loggers that write to one slog.Logger, with a "pion" field naming the
// Pion subsystem (ice, dtls, pc, ...).
type Factory struct {
	Logger *slog.Logger
}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Logger.With("pion", scope)}
}

// logger maps Pion's levels onto slog's. Pion's Info level is connection-lifecycle chatter
// that the SFU already reports itself, so it goes to Debug; Pion's Trace goes below Debug.
type logger struct {
	log *slog.Logger
}

const levelTrace = slog.LevelDebug - 4

func (l logger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l logger) emitf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return // do not pay for formatting a message nobody reads
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l logger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l logger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l logger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l logger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l logger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l logger) Warn(msg string)                   { l.emit(slog.LevelWarn, msg) }
func (l logger) Warnf(format string, args ...any)  { l.emitf(slog.LevelWarn, format, args...) }
func (l logger) Error(msg string)                  { l.emit(slog.LevelError, msg) }
func (l logger) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
