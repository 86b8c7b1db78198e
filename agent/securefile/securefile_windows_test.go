package securefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

func TestRestrictRepairsLoosenedDACL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.key")
	if err := WriteFile(path, []byte("k")); err != nil {
		t.Fatal(err)
	}
	// Grant Everyone (WD) read, the way a careless copy into a shared folder would.
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;SY)(A;;GR;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err == nil {
		t.Fatal("Check of a file readable by Everyone passed, want an error")
	}
	if err := Restrict(path); err != nil {
		t.Fatal(err)
	}
	if err := Check(path); err != nil {
		t.Errorf("Check after Restrict: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "k" {
		t.Errorf("ReadFile = %q, %v; want %q", b, err, "k")
	}
}

func TestSDDLNamesServiceAndAdmins(t *testing.T) {
	s, err := sddl(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"D:P", "(A;;FA;;;SY)", "(A;;FA;;;BA)", "(A;;FA;;;" + ServiceSID(ServiceName) + ")"} {
		if !strings.Contains(s, want) {
			t.Errorf("sddl = %s, missing %s", s, want)
		}
	}
}
