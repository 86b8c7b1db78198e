package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The Windows service manager keeps a service's recovery actions in the registry value
// FailureActions (REG_BINARY) of its key: a SERVICE_FAILURE_ACTIONS header of five 32-bit
// little-endian fields (reset period in seconds, reboot message and command as null
// pointers, the number of actions, and a non-zero placeholder for the action array), then
// each SC_ACTION as type and delay in milliseconds. The code is portable so that the Linux
// side of the Wine tests can read what the Windows side wrote.

// scActionRestart is SC_ACTION_RESTART.
const scActionRestart = 1

// EncodeFailureActions returns the FailureActions value for restarts after delays.
func EncodeFailureActions(delays []time.Duration, reset time.Duration) []byte {
	b := make([]byte, 20+8*len(delays))
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(reset/time.Second))
	le.PutUint32(b[12:], uint32(len(delays)))
	le.PutUint32(b[16:], 20) // where the array follows, as the service manager writes it
	for i, d := range delays {
		le.PutUint32(b[20+8*i:], scActionRestart)
		le.PutUint32(b[24+8*i:], uint32(d/time.Millisecond))
	}
	return b
}

// FailureAction is one recovery action.
type FailureAction struct {
	// Type is SC_ACTION_TYPE: 0 none, 1 restart, 2 reboot, 3 run a command.
	Type  uint32
	Delay time.Duration
}

// DecodeFailureActions reads a FailureActions value.
func DecodeFailureActions(b []byte) (actions []FailureAction, reset time.Duration, err error) {
	if len(b) < 20 {
		return nil, 0, errors.New("FailureActions: shorter than its header")
	}
	le := binary.LittleEndian
	n := int(le.Uint32(b[12:]))
	if len(b) < 20+8*n {
		return nil, 0, fmt.Errorf("FailureActions: %d actions announced, room for %d", n, (len(b)-20)/8)
	}
	for i := range n {
		actions = append(actions, FailureAction{Type: le.Uint32(b[20+8*i:]), Delay: time.Duration(le.Uint32(b[24+8*i:])) * time.Millisecond})
	}
	return actions, time.Duration(le.Uint32(b[0:])) * time.Second, nil
}

// describeRecovery says what recovery actions do, for status.
func describeRecovery(actions []FailureAction, reset time.Duration, nonCrash bool) string {
	if len(actions) == 0 {
		return "recovery: none"
	}
	var ds []string
	for _, a := range actions {
		switch a.Type {
		case scActionRestart:
			ds = append(ds, "restart after "+a.Delay.String())
		case 0:
			ds = append(ds, "nothing")
		default:
			ds = append(ds, fmt.Sprintf("action %d after %s", a.Type, a.Delay))
		}
	}
	s := "recovery: " + strings.Join(ds, ", then ") + ", failures counted afresh after " + reset.String()
	if nonCrash {
		s += "; also when it stops with an error"
	}
	return s
}
