package daemon

import (
	"log/slog"

	"golang.org/x/sys/windows/svc/eventlog"
)

// serviceLog writes the records meant for an administrator to the Windows Event Log, source
// CertAgent (registered by Install), with their kind's stable event ID (eventFor).
func serviceLog(slog.Leveler) (slog.Handler, func() error, error) {
	el, err := eventlog.Open(Name)
	if err != nil {
		return nil, nil, err
	}
	h := &recordHandler{
		enabled: func(l slog.Level) bool { return l >= slog.LevelInfo },
		emit: func(e entry) error {
			id, typ, ok := eventFor(e)
			if !ok {
				return nil
			}
			switch typ {
			case eventError:
				return el.Error(id, e.Text())
			case eventWarning:
				return el.Warning(id, e.Text())
			}
			return el.Info(id, e.Text())
		},
	}
	return h, el.Close, nil
}
