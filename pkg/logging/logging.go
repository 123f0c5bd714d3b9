// Package logging sets up the logrus logger every clusterpki binary writes to, and routes
// client-go's klog output into that same stream so there is one format and one level.
package logging

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// Formats lists the accepted values of the log format.
var Formats = []string{"text", "json"}

// Levels lists the accepted values of the log level, most verbose first.
var Levels = []string{"trace", "debug", "info", "warning", "error"}

// Setup returns a logger writing to out in format ("text" or "json") at level
// ("trace", "debug", "info", "warning" or "error"), and bridges klog into it.
func Setup(format, level string, out io.Writer) (*logrus.Logger, error) {
	log, err := New(format, level, out)
	if err != nil {
		return nil, err
	}
	if err := BridgeKlog(log); err != nil {
		return nil, err
	}
	return log, nil
}

// New returns a logger writing to out in format at level, without touching klog.
func New(format, level string, out io.Writer) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(out)

	switch strings.ToLower(format) {
	case "text", "":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("log format %q is not one of %s", format, strings.Join(Formats, ", "))
	}

	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	log.SetLevel(lvl)
	return log, nil
}

// ParseLevel turns one of Levels (or "warn", or "" for info) into a logrus level.
func ParseLevel(level string) (logrus.Level, error) {
	switch strings.ToLower(level) {
	case "trace":
		return logrus.TraceLevel, nil
	case "debug":
		return logrus.DebugLevel, nil
	case "info", "":
		return logrus.InfoLevel, nil
	case "warning", "warn":
		return logrus.WarnLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	default:
		return 0, fmt.Errorf("log level %q is not one of %s", level, strings.Join(Levels, ", "))
	}
}

// BridgeKlog sends everything klog (and so client-go) logs into log: klog's informational
// messages at verbosity 0-2 become Debug, 3-6 become Trace, more verbose ones are dropped,
// and klog errors stay errors.
func BridgeKlog(log *logrus.Logger) error {
	// klog checks its own -v flag before it calls the logger, so raise it just as far as the
	// logrus level will let through; the sink's Enabled does the exact filtering.
	v := 0
	switch {
	case log.IsLevelEnabled(logrus.TraceLevel):
		v = maxTraceVerbosity
	case log.IsLevelEnabled(logrus.DebugLevel):
		v = maxDebugVerbosity
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Set("v", strconv.Itoa(v)); err != nil {
		return fmt.Errorf("set klog verbosity: %w", err)
	}
	klog.SetLoggerWithOptions(NewLogr(log), klog.ContextualLogger(true))
	return nil
}
