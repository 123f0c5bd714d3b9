package logging

import (
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
)

const (
	// maxDebugVerbosity is the most verbose klog level that still logs at logrus Debug.
	maxDebugVerbosity = 2
	// maxTraceVerbosity is the most verbose klog level that is logged at all (at Trace);
	// beyond it client-go dumps request and response bodies.
	maxTraceVerbosity = 6
)

// NewLogr returns a logr.Logger that writes into log, mapping logr verbosity as BridgeKlog describes.
func NewLogr(log *logrus.Logger) logr.Logger {
	return logr.New(&logrusSink{entry: logrus.NewEntry(log)})
}

// logrusSink is a logr.LogSink writing into a logrus entry.
type logrusSink struct {
	entry *logrus.Entry
	name  string
}

var _ logr.LogSink = &logrusSink{}

// Init does nothing: logrus does not report call sites.
func (s *logrusSink) Init(logr.RuntimeInfo) {}

// Enabled reports whether a message at logr verbosity level would be written.
func (s *logrusSink) Enabled(level int) bool {
	lvl, ok := logrusLevel(level)
	return ok && s.entry.Logger.IsLevelEnabled(lvl)
}

// Info writes an informational message at the logrus level matching its verbosity.
func (s *logrusSink) Info(level int, msg string, keysAndValues ...any) {
	lvl, ok := logrusLevel(level)
	if !ok {
		return
	}
	s.withValues(keysAndValues).Log(lvl, s.message(msg))
}

// Error writes an error message at logrus Error level.
func (s *logrusSink) Error(err error, msg string, keysAndValues ...any) {
	e := s.withValues(keysAndValues)
	if err != nil {
		e = e.WithError(err)
	}
	e.Error(s.message(msg))
}

// WithValues returns a sink that adds keysAndValues to every message.
func (s *logrusSink) WithValues(keysAndValues ...any) logr.LogSink {
	return &logrusSink{entry: s.withValues(keysAndValues), name: s.name}
}

// WithName returns a sink whose messages carry name as a logger field.
func (s *logrusSink) WithName(name string) logr.LogSink {
	if s.name != "" {
		name = s.name + "/" + name
	}
	return &logrusSink{entry: s.entry, name: name}
}

// message prefixes msg with the logger name, the way klog's own text output does.
func (s *logrusSink) message(msg string) string {
	if s.name == "" {
		return msg
	}
	return s.name + ": " + msg
}

// withValues turns logr key/value pairs into logrus fields; a dangling key gets a placeholder.
func (s *logrusSink) withValues(keysAndValues []any) *logrus.Entry {
	if len(keysAndValues) == 0 {
		return s.entry
	}
	fields := make(logrus.Fields, (len(keysAndValues)+1)/2)
	for i := 0; i < len(keysAndValues); i += 2 {
		key := fmt.Sprint(keysAndValues[i])
		if i+1 >= len(keysAndValues) {
			fields[key] = "(MISSING)"
			break
		}
		fields[strings.TrimSpace(key)] = keysAndValues[i+1]
	}
	return s.entry.WithFields(fields)
}

// logrusLevel maps a logr verbosity to the logrus level it is logged at, and false when it
// is too verbose to log at all.
func logrusLevel(v int) (logrus.Level, bool) {
	switch {
	case v <= maxDebugVerbosity:
		return logrus.DebugLevel, true
	case v <= maxTraceVerbosity:
		return logrus.TraceLevel, true
	default:
		return 0, false
	}
}
