package daemon

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// What kardianos/service does on Windows, and what this file adds with golang.org/x/sys:
//
//   - Install: kardianos creates the service (name, display name, description, automatic
//     start, NT SERVICE\CertAgent, the command line from Executable and Arguments), gives it
//     one recovery action (restart after 5 s, failures counted afresh after a day) and
//     registers the Event Log source. It refuses a service that exists, so a second install
//     updates that one in place here. Then, for both, configure sets what kardianos cannot:
//     error control normal (kardianos leaves SERVICE_ERROR_IGNORE, so a failed start at boot
//     would go unlogged), delayed start, the unrestricted service SID, the three recovery
//     actions and their non-crash-failure flag.
//   - Start and Stop: kardianos's, then a wait here: its Start returns as soon as the service
//     manager has launched the process, and its Stop waits without a limit.
//   - Uninstall: stop first (kardianos deletes a running service, which lingers until it
//     exits), then kardianos's.
//   - Query: all here (see query).
//
// Delayed start is not asked of kardianos (its DelayedAutoStart option): mgr.CreateService,
// which its Install calls, deletes the service it has just created when the service manager
// refuses that setting, and Wine's (the tests') refuses it with ERROR_INVALID_LEVEL; set with
// the rest, it falls back to the registry value Windows keeps it in.

// serviceKey is where the service manager keeps the service's settings.
const serviceKey = `SYSTEM\CurrentControlSet\Services\` + Name

// eventSourceKey is the Event Log source's registration.
const eventSourceKey = `SYSTEM\CurrentControlSet\Services\EventLog\Application\` + Name

// newService is the service as kardianos/service defines it. spec is needed only to install.
func newService(spec Spec) (service.Service, error) {
	c := &service.Config{
		Name:        Name,
		DisplayName: DisplayName,
		Description: Description,
		UserName:    Account, // a virtual account: no Password
		Executable:  spec.Executable,
		Option: service.KeyValue{
			service.StartType:              service.ServiceStartAutomatic,
			service.OnFailure:              service.OnFailureRestart,
			service.OnFailureDelayDuration: Recovery[0].String(),
			service.OnFailureResetPeriod:   int(RecoveryReset / time.Second),
		},
	}
	if spec.ConfigFile != "" {
		c.Arguments = Args(spec.ConfigFile)
	}
	return service.New(idle{}, c)
}

// newRunner is the service that runs i (runService).
func newRunner(i service.Interface, opt service.KeyValue) (service.Service, error) {
	return service.New(i, &service.Config{Name: Name, DisplayName: DisplayName, Description: Description, Option: opt})
}

// commandLine is the service's ImagePath: the executable and Args, quoted for Windows, as
// mgr.CreateService (kardianos's Install) writes it.
func commandLine(s Spec) string {
	parts := []string{syscall.EscapeArg(s.Executable)}
	for _, a := range Args(s.ConfigFile) {
		parts = append(parts, syscall.EscapeArg(a))
	}
	return strings.Join(parts, " ")
}

// scmError adds the fix to an access denied.
func scmError(op string, err error) error {
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return fmt.Errorf("%s: %w; run it from an elevated prompt (Run as administrator)", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, scmError("connecting to the service manager", err)
	}
	return m, nil
}

func (m *Manager) install(s Spec) error {
	sm, err := connect()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	name, _ := windows.UTF16PtrFromString(Name)
	h, err := windows.OpenService(sm.Handle, name, windows.SERVICE_ALL_ACCESS)
	switch {
	case err == nil:
		// kardianos's Install refuses a service that exists ("service CertAgent already
		// exists"): update it in place, keeping its registry key (and whatever an
		// administrator added there). A running service keeps its command line until it
		// restarts.
		defer windows.CloseServiceHandle(h)
		if err := updateService(h, s); err != nil {
			return err
		}
	case errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST):
		if h, err = create(sm, s); err != nil {
			return err
		}
		defer windows.CloseServiceHandle(h)
	default:
		return scmError("opening service "+Name, err)
	}
	if err := configure(h); err != nil {
		return fmt.Errorf("configuring service %s: %w", Name, err)
	}
	return nil
}

// create installs the service with kardianos/service and returns a handle to it.
func create(sm *mgr.Mgr, spec Spec) (windows.Handle, error) {
	ks, err := newService(spec)
	if err != nil {
		return 0, err
	}
	// kardianos keeps an Event Log source that exists (an earlier install's, the MSI's):
	// removed first, it registers it afresh (EventCreate.exe as message file, which shows
	// each event's text as it is).
	_ = eventlog.Remove(Name)
	if err := ks.Install(); err != nil {
		return 0, scmError("creating service "+Name, err)
	}
	name, _ := windows.UTF16PtrFromString(Name)
	h, err := windows.OpenService(sm.Handle, name, windows.SERVICE_ALL_ACCESS)
	if err != nil {
		return 0, fmt.Errorf("opening service %s: %w", Name, err)
	}
	// Error control normal, as the MSI's: kardianos leaves mgr.Config's zero,
	// SERVICE_ERROR_IGNORE, with which a failed start at boot is not logged.
	if err := windows.ChangeServiceConfig(h, windows.SERVICE_NO_CHANGE, windows.SERVICE_NO_CHANGE,
		windows.SERVICE_ERROR_NORMAL, nil, nil, nil, nil, nil, nil, nil); err != nil {
		windows.CloseServiceHandle(h)
		return 0, fmt.Errorf("configuring service %s: error control: %w", Name, err)
	}
	return h, nil
}

// updateService changes an installed service to spec (what create's kardianos Install sets), and
// registers the Event Log source afresh, so that a second install repairs it.
func updateService(h windows.Handle, s Spec) error {
	bin, err := windows.UTF16PtrFromString(commandLine(s))
	if err != nil {
		return err
	}
	display, _ := windows.UTF16PtrFromString(DisplayName)
	account, _ := windows.UTF16PtrFromString(Account)
	if err := windows.ChangeServiceConfig(h, windows.SERVICE_WIN32_OWN_PROCESS, windows.SERVICE_AUTO_START,
		windows.SERVICE_ERROR_NORMAL, bin, nil, nil, nil, account, nil, display); err != nil {
		return fmt.Errorf("updating service %s: %w", Name, err)
	}
	desc, _ := windows.UTF16PtrFromString(Description)
	if err := windows.ChangeServiceConfig2(h, windows.SERVICE_CONFIG_DESCRIPTION,
		(*byte)(unsafe.Pointer(&windows.SERVICE_DESCRIPTION{Description: desc}))); err != nil {
		if err := setRegistry(func(k registry.Key) error { return k.SetStringValue("Description", Description) }); err != nil {
			return fmt.Errorf("updating service %s: description: %w", Name, err)
		}
	}
	_ = eventlog.Remove(Name)
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		return fmt.Errorf("registering the Event Log source %s: %w", Name, err)
	}
	return nil
}

// configure sets what kardianos/service cannot: delayed automatic start, an unrestricted
// service SID (the SID the agent's files grant access to), the recovery actions (kardianos's
// OnFailure is one action; these are three) and their non-crash-failure flag. Each goes
// through ChangeServiceConfig2 and is read back; a service manager that does not know the
// setting (Wine answers ERROR_INVALID_LEVEL, or accepts recovery actions and keeps nothing)
// gets the registry value Windows itself keeps it in, so that what the service manager will
// read is right either way.
func configure(h windows.Handle) error {
	delayed := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	if err := config2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, unsafe.Pointer(&delayed), "DelayedAutostart", 1); err != nil {
		return fmt.Errorf("delayed start: %w", err)
	}
	sid := uint32(windows.SERVICE_SID_TYPE_UNRESTRICTED)
	if err := config2(h, windows.SERVICE_CONFIG_SERVICE_SID_INFO, unsafe.Pointer(&sid), "ServiceSidType", sid); err != nil {
		return fmt.Errorf("service SID: %w", err)
	}

	actions := make([]windows.SC_ACTION, len(Recovery))
	for i, d := range Recovery {
		actions[i] = windows.SC_ACTION{Type: windows.SC_ACTION_RESTART, Delay: uint32(d / time.Millisecond)}
	}
	fa := windows.SERVICE_FAILURE_ACTIONS{ResetPeriod: uint32(RecoveryReset / time.Second), ActionsCount: uint32(len(actions)), Actions: &actions[0]}
	err := windows.ChangeServiceConfig2(h, windows.SERVICE_CONFIG_FAILURE_ACTIONS, (*byte)(unsafe.Pointer(&fa)))
	if err == nil {
		_, err = queryConfig2(h, windows.SERVICE_CONFIG_FAILURE_ACTIONS)
	}
	if errors.Is(err, windows.ERROR_INVALID_LEVEL) {
		err = setRegistry(func(k registry.Key) error {
			return k.SetBinaryValue("FailureActions", EncodeFailureActions(Recovery, RecoveryReset))
		})
	}
	if err != nil {
		return fmt.Errorf("recovery actions: %w", err)
	}
	nonCrash := windows.SERVICE_FAILURE_ACTIONS_FLAG{FailureActionsOnNonCrashFailures: 1}
	if err := config2(h, windows.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, unsafe.Pointer(&nonCrash), "FailureActionsOnNonCrashFailures", 1); err != nil {
		return fmt.Errorf("recovery on non-crash failures: %w", err)
	}
	return nil
}

// config2 sets one ChangeServiceConfig2 level, falling back to the registry DWORD value
// when the service manager does not know the level.
func config2(h windows.Handle, level uint32, info unsafe.Pointer, value string, dword uint32) error {
	err := windows.ChangeServiceConfig2(h, level, (*byte)(info))
	if err == nil {
		_, err = queryConfig2(h, level)
	}
	if errors.Is(err, windows.ERROR_INVALID_LEVEL) {
		return setRegistry(func(k registry.Key) error { return k.SetDWordValue(value, dword) })
	}
	return err
}

func setRegistry(set func(registry.Key) error) error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("opening HKLM\\%s: %w", serviceKey, err)
	}
	defer k.Close()
	return set(k)
}

// queryConfig2 reads one QueryServiceConfig2 level.
func queryConfig2(h windows.Handle, level uint32) ([]byte, error) {
	n := uint32(1024)
	for {
		b := make([]byte, n)
		err := windows.QueryServiceConfig2(h, level, &b[0], n, &n)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return nil, err
		}
	}
}

func (m *Manager) uninstall() error {
	if err := m.stop(); err != nil {
		if errors.Is(err, ErrNotInstalled) {
			_ = eventlog.Remove(Name)
		}
		return err
	}
	ks, err := newService(Spec{})
	if err != nil {
		return err
	}
	if err := ks.Uninstall(); err != nil {
		// kardianos removes the Event Log source after the service, and fails when the source
		// is gone already (removed by hand): nothing is left to remove then.
		if !installed() && !keyExists(eventSourceKey) {
			return nil
		}
		return scmError("removing service "+Name, err)
	}
	return nil
}

// installed reports whether the service exists (and is not marked for deletion).
func installed() bool {
	h, err := openQuery()
	if err != nil {
		return !errors.Is(err, ErrNotInstalled) && !errors.Is(err, windows.ERROR_SERVICE_MARKED_FOR_DELETE)
	}
	windows.CloseServiceHandle(h)
	return true
}

func keyExists(path string) bool {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	k.Close()
	return true
}

// openQuery opens the service with query rights only, which every user has; ErrNotInstalled
// when there is none.
func openQuery() (windows.Handle, error) {
	scm, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return 0, fmt.Errorf("connecting to the service manager: %w", err)
	}
	defer windows.CloseServiceHandle(scm)
	name, _ := windows.UTF16PtrFromString(Name)
	h, err := windows.OpenService(scm, name, windows.SERVICE_QUERY_CONFIG|windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return 0, ErrNotInstalled
	}
	if err != nil {
		return 0, fmt.Errorf("opening service %s: %w", Name, err)
	}
	return h, nil
}

// control runs one of kardianos's Start and Stop, which open the service with the rights to
// start and stop it (administrators have them).
func control(op string, do func(service.Service) error) error {
	ks, err := newService(Spec{})
	if err != nil {
		return err
	}
	err = do(ks)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST):
		return ErrNotInstalled
	}
	return scmError(op+" service "+Name, err)
}

func (m *Manager) start() error {
	err := control("starting", service.Service.Start)
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return err
	}
	// kardianos's Start returns once the service manager has launched the process: wait
	// while the service reports progress, and say how it ended.
	st, err := waitWhile(svc.StartPending, 2*time.Minute)
	if err != nil {
		return err
	}
	if st.State != svc.Running {
		return fmt.Errorf("service %s stopped as it started (exit code %d, service exit code %d): the Event Log (source %s) says why",
			Name, st.Win32ExitCode, st.ServiceSpecificExitCode, Name)
	}
	return nil
}

// stopLimit bounds a stop: the service's own (StopTimeout), and time to exit.
const stopLimit = StopTimeout + 30*time.Second

// stop stops the service, if it runs, and waits until it has stopped.
func (m *Manager) stop() error {
	st, err := queryStatus()
	if err != nil {
		return err
	}
	switch st.State {
	case svc.Stopped:
		return nil
	case svc.StopPending:
		// Stopping already: kardianos's Stop would ask again, which the service manager
		// refuses (ERROR_SERVICE_CANNOT_ACCEPT_CTRL). Wait for this stop.
	default:
		// kardianos's Stop waits until the service has stopped, without a limit: bounded
		// here. On time out its goroutine is left behind; the command ends right after.
		errc := make(chan error, 1)
		go func() { errc <- control("stopping", service.Service.Stop) }()
		t := time.NewTimer(stopLimit)
		defer t.Stop()
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
				return err
			}
		case <-t.C:
			return fmt.Errorf("service %s is still stopping after %s", Name, stopLimit)
		}
	}
	st, err = waitWhile(svc.StopPending, stopLimit)
	if err != nil {
		return err
	}
	if st.State != svc.Stopped {
		return fmt.Errorf("service %s did not stop (state %s)", Name, stateName(st.State))
	}
	return nil
}

// restart is stop then start, not kardianos's Restart: that fails on a stopped service, and
// does not wait for the start.
func (m *Manager) restart() error {
	if err := m.stop(); err != nil {
		return err
	}
	return m.start()
}

func queryStatus() (svc.Status, error) {
	h, err := openQuery()
	if err != nil {
		return svc.Status{}, err
	}
	defer windows.CloseServiceHandle(h)
	st, err := (&mgr.Service{Name: Name, Handle: h}).Query()
	if err != nil {
		return st, fmt.Errorf("querying service %s: %w", Name, err)
	}
	return st, nil
}

// waitWhile polls the service while it is in state pending (or, right after a start or stop
// request, still in the state before), for at most limit.
func waitWhile(pending svc.State, limit time.Duration) (svc.Status, error) {
	deadline := time.Now().Add(limit)
	before := svc.Stopped
	if pending == svc.StopPending {
		before = svc.Running
	}
	for i := 0; ; i++ {
		st, err := queryStatus()
		if err != nil {
			return st, err
		}
		if st.State != pending && !(st.State == before && i < 20) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("service %s is still %s after %s", Name, stateName(st.State), limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	}
	return fmt.Sprintf("in state %d", s)
}

// query reads the service's status through the service manager itself, not kardianos's
// Status: that opens the service with the rights to start and stop it, which only
// administrators have, so `service status` would need an elevated prompt; it folds
// START_PENDING into running and STOP_PENDING into stopped; and it has no PID, command line,
// account, start type or recovery actions.
func (m *Manager) query() (Status, error) {
	st := Status{State: NotInstalled}
	// Query rights only, which every user has: status needs no elevation.
	h, err := openQuery()
	if errors.Is(err, ErrNotInstalled) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer windows.CloseServiceHandle(h)
	st.Definition = `HKLM\` + serviceKey

	var ss windows.SERVICE_STATUS_PROCESS
	var n uint32
	if err := windows.QueryServiceStatusEx(h, windows.SC_STATUS_PROCESS_INFO, (*byte)(unsafe.Pointer(&ss)), uint32(unsafe.Sizeof(ss)), &n); err != nil {
		return st, fmt.Errorf("querying service %s: %w", Name, err)
	}
	switch svc.State(ss.CurrentState) {
	case svc.Running:
		st.State = Running
	case svc.StartPending:
		st.State = Starting
	case svc.StopPending:
		st.State = Stopping
	case svc.Stopped:
		st.State = Stopped
		if ss.Win32ExitCode != 0 {
			st.Notes = append(st.Notes, fmt.Sprintf("last exit: code %d, service exit code %d", ss.Win32ExitCode, ss.ServiceSpecificExitCode))
		}
	default:
		st.State = Unknown
	}
	st.PID = int(ss.ProcessId)

	b := make([]byte, 8192)
	if err := windows.QueryServiceConfig(h, (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0])), uint32(len(b)), &n); err != nil {
		return st, fmt.Errorf("querying the configuration of service %s: %w", Name, err)
	}
	qc := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
	if args, err := windows.DecomposeCommandLine(windows.UTF16PtrToString(qc.BinaryPathName)); err == nil {
		st.Command = args
		st.ConfigFile = ConfigFileOf(args)
	}
	st.Account = windows.UTF16PtrToString(qc.ServiceStartName)
	switch qc.StartType {
	case windows.SERVICE_AUTO_START:
		st.StartType = "automatic"
		if delayedStart(h) {
			st.StartType = "automatic (delayed)"
		}
	case windows.SERVICE_DEMAND_START:
		st.StartType = "manual"
	case windows.SERVICE_DISABLED:
		st.StartType = "disabled"
	}
	if actions, reset, nonCrash, err := recoveryOf(h); err == nil {
		st.Notes = append(st.Notes, describeRecovery(actions, reset, nonCrash))
	} else {
		st.Notes = append(st.Notes, "recovery actions unreadable: "+err.Error())
	}
	return st, nil
}

func delayedStart(h windows.Handle) bool {
	if b, err := queryConfig2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO); err == nil {
		return (*windows.SERVICE_DELAYED_AUTO_START_INFO)(unsafe.Pointer(&b[0])).IsDelayedAutoStartUp != 0
	}
	v, _ := registryDWord("DelayedAutostart")
	return v != 0
}

// recoveryOf reads the recovery actions through the service manager, or from the registry
// where it does not know them (Wine).
func recoveryOf(h windows.Handle) ([]FailureAction, time.Duration, bool, error) {
	var nonCrash bool
	if b, err := queryConfig2(h, windows.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG); err == nil {
		nonCrash = (*windows.SERVICE_FAILURE_ACTIONS_FLAG)(unsafe.Pointer(&b[0])).FailureActionsOnNonCrashFailures != 0
	} else {
		v, _ := registryDWord("FailureActionsOnNonCrashFailures")
		nonCrash = v != 0
	}
	b, err := queryConfig2(h, windows.SERVICE_CONFIG_FAILURE_ACTIONS)
	if err == nil {
		fa := (*windows.SERVICE_FAILURE_ACTIONS)(unsafe.Pointer(&b[0]))
		var actions []FailureAction
		for _, a := range unsafe.Slice(fa.Actions, fa.ActionsCount) {
			actions = append(actions, FailureAction{Type: a.Type, Delay: time.Duration(a.Delay) * time.Millisecond})
		}
		return actions, time.Duration(fa.ResetPeriod) * time.Second, nonCrash, nil
	}
	k, kerr := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey, registry.QUERY_VALUE)
	if kerr != nil {
		return nil, 0, false, err
	}
	defer k.Close()
	raw, _, rerr := k.GetBinaryValue("FailureActions")
	if errors.Is(rerr, registry.ErrNotExist) {
		return nil, 0, nonCrash, nil
	}
	if rerr != nil {
		return nil, 0, false, rerr
	}
	actions, reset, derr := DecodeFailureActions(raw)
	return actions, reset, nonCrash, derr
}

func registryDWord(name string) (uint64, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, serviceKey, registry.QUERY_VALUE)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue(name)
	return v, err
}
