package turnserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion/turn's logs into slog, all of them at Debug or below. Unlike the SFU's
// adapter (media/internal/pionlog), Warn and Error are demoted too: on a TURN server facing the
// internet they are nearly all caused by clients (port scanners failing the TLS handshake,
// peers sending to a closed allocation), and the server reports what operators need
// (refused credentials, refused peers) itself, with structured fields.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l pionLogger) emit(level slog.Level, pionLevel, msg string) {
	l.log.Log(context.Background(), level, msg, "pion_level", pionLevel)
}

func (l pionLogger) emitf(level slog.Level, pionLevel, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return // Pion logs per relayed packet at Debug: do not format what nobody reads
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "pion_level", pionLevel)
}

func (l pionLogger) Trace(msg string) { l.emit(levelTrace, "trace", msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	l.emitf(levelTrace, "trace", format, args...)
}
func (l pionLogger) Debug(msg string) { l.emit(levelTrace, "debug", msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emitf(levelTrace, "debug", format, args...)
}
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, "info", msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, "info", format, args...)
}
func (l pionLogger) Warn(msg string) { l.emit(slog.LevelDebug, "warn", msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.emitf(slog.LevelDebug, "warn", format, args...)
}
func (l pionLogger) Error(msg string) { l.emit(slog.LevelDebug, "error", msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.emitf(slog.LevelDebug, "error", format, args...)
}
