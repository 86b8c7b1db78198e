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

// serviceKey is where the service manager keeps the service's settings.
const serviceKey = `SYSTEM\CurrentControlSet\Services\` + Name

// commandLine is the service's ImagePath: the executable and Args, quoted for Windows.
func commandLine(s Spec) string {
	parts := []string{syscall.EscapeArg(s.Executable)}
	for _, a := range Args(s.ConfigFile) {
		parts = append(parts, syscall.EscapeArg(a))
	}
	return strings.Join(parts, " ")
}

func connect() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, fmt.Errorf("connecting to the service manager: %w; run it from an elevated prompt (Run as administrator)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the service manager: %w", err)
	}
	return m, nil
}

func (m *Manager) install(s Spec) error {
	sm, err := connect()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	bin, err := windows.UTF16PtrFromString(commandLine(s))
	if err != nil {
		return err
	}
	name, _ := windows.UTF16PtrFromString(Name)
	display, _ := windows.UTF16PtrFromString(DisplayName)
	account, _ := windows.UTF16PtrFromString(Account)
	h, err := windows.OpenService(sm.Handle, name, windows.SERVICE_ALL_ACCESS)
	switch {
	case err == nil:
		// Installed already: update it in place, keeping its registry key (and whatever an
		// administrator added there).
		err = windows.ChangeServiceConfig(h, windows.SERVICE_WIN32_OWN_PROCESS, windows.SERVICE_AUTO_START,
			windows.SERVICE_ERROR_NORMAL, bin, nil, nil, nil, account, nil, display)
		if err != nil {
			windows.CloseServiceHandle(h)
			return fmt.Errorf("updating service %s: %w", Name, err)
		}
	case errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST):
		h, err = windows.CreateService(sm.Handle, name, display, windows.SERVICE_ALL_ACCESS,
			windows.SERVICE_WIN32_OWN_PROCESS, windows.SERVICE_AUTO_START, windows.SERVICE_ERROR_NORMAL,
			bin, nil, nil, nil, account, nil)
		if err != nil {
			return fmt.Errorf("creating service %s: %w", Name, err)
		}
	default:
		return fmt.Errorf("opening service %s: %w", Name, err)
	}
	defer windows.CloseServiceHandle(h)
	if err := configure(h); err != nil {
		return fmt.Errorf("configuring service %s: %w", Name, err)
	}
	// The Event Log source: EventCreate.exe as message file shows each event's text as it is.
	// Removed and added again, so that a second install repairs it.
	_ = eventlog.Remove(Name)
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		return fmt.Errorf("registering the Event Log source %s: %w", Name, err)
	}
	return nil
}

// configure sets what CreateService cannot: the description, delayed automatic start, an
// unrestricted service SID (the SID the agent's files grant access to), the recovery actions
// and their non-crash-failure flag. Each goes through ChangeServiceConfig2 and is read back;
// a service manager that does not know the setting (Wine answers ERROR_INVALID_LEVEL, or
// accepts recovery actions and keeps nothing) gets the registry value Windows itself keeps it
// in, so that what the service manager will read is right either way.
func configure(h windows.Handle) error {
	desc, _ := windows.UTF16PtrFromString(Description)
	if err := windows.ChangeServiceConfig2(h, windows.SERVICE_CONFIG_DESCRIPTION,
		(*byte)(unsafe.Pointer(&windows.SERVICE_DESCRIPTION{Description: desc}))); err != nil {
		if err := setRegistry(func(k registry.Key) error { return k.SetStringValue("Description", Description) }); err != nil {
			return err
		}
	}

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
	sm, err := connect()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	s, err := sm.OpenService(Name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		_ = eventlog.Remove(Name)
		return ErrNotInstalled
	}
	if err != nil {
		return fmt.Errorf("opening service %s: %w", Name, err)
	}
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("removing service %s: %w", Name, err)
	}
	if err := eventlog.Remove(Name); err != nil && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return fmt.Errorf("removing the Event Log source %s: %w", Name, err)
	}
	return nil
}

// openControl opens the service with the rights to start, stop and query it, which
// administrators have.
func openControl() (*mgr.Mgr, *mgr.Service, error) {
	sm, err := connect()
	if err != nil {
		return nil, nil, err
	}
	s, err := sm.OpenService(Name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		sm.Disconnect()
		return nil, nil, ErrNotInstalled
	}
	if err != nil {
		sm.Disconnect()
		return nil, nil, fmt.Errorf("opening service %s: %w", Name, err)
	}
	return sm, s, nil
}

func (m *Manager) start() error {
	sm, s, err := openControl()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	defer s.Close()
	return startAndWait(s)
}

func (m *Manager) stop() error {
	sm, s, err := openControl()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	defer s.Close()
	return stopAndWait(s)
}

func (m *Manager) restart() error {
	sm, s, err := openControl()
	if err != nil {
		return err
	}
	defer sm.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return err
	}
	return startAndWait(s)
}

// startAndWait starts the service and waits while it reports progress.
func startAndWait(s *mgr.Service) error {
	if err := s.Start(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		return fmt.Errorf("starting service %s: %w", Name, err)
	}
	st, err := waitWhile(s, svc.StartPending, 2*time.Minute)
	if err != nil {
		return err
	}
	if st.State != svc.Running {
		return fmt.Errorf("service %s stopped as it started (exit code %d, service exit code %d): the Event Log (source %s) says why",
			Name, st.Win32ExitCode, st.ServiceSpecificExitCode, Name)
	}
	return nil
}

// stopAndWait stops the service, if it runs, and waits until it has stopped.
func stopAndWait(s *mgr.Service) error {
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("querying service %s: %w", Name, err)
	}
	if st.State == svc.Stopped {
		return nil
	}
	if st.State != svc.StopPending {
		if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return fmt.Errorf("stopping service %s: %w", Name, err)
		}
	}
	st, err = waitWhile(s, svc.StopPending, StopTimeout+30*time.Second)
	if err != nil {
		return err
	}
	if st.State != svc.Stopped {
		return fmt.Errorf("service %s did not stop (state %d)", Name, st.State)
	}
	return nil
}

// waitWhile polls the service while it is in state pending (or, right after a start or stop
// request, still in the state before), for at most limit.
func waitWhile(s *mgr.Service, pending svc.State, limit time.Duration) (svc.Status, error) {
	deadline := time.Now().Add(limit)
	before := svc.Stopped
	if pending == svc.StopPending {
		before = svc.Running
	}
	for i := 0; ; i++ {
		st, err := s.Query()
		if err != nil {
			return st, fmt.Errorf("querying service %s: %w", Name, err)
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

func (m *Manager) query() (Status, error) {
	st := Status{State: NotInstalled}
	// Query rights only, which every user has: status needs no elevation.
	scm, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return st, fmt.Errorf("connecting to the service manager: %w", err)
	}
	defer windows.CloseServiceHandle(scm)
	name, _ := windows.UTF16PtrFromString(Name)
	h, err := windows.OpenService(scm, name, windows.SERVICE_QUERY_CONFIG|windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("opening service %s: %w", Name, err)
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

// newRunner is the service that runs i (runService).
func newRunner(i service.Interface, opt service.KeyValue) (service.Service, error) {
	return service.New(i, &service.Config{Name: Name, DisplayName: DisplayName, Description: Description, Option: opt})
}
