package securefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// sddl builds the protected DACL: full control for SYSTEM (SY), the built-in Administrators
// (BA), the service's virtual account and the running user. "P" blocks inheritance from the
// parent folder (%ProgramData% grants Users read by default), "OICI" lets a directory pass the
// same entries down to what is created in it.
func sddl(dir bool) (string, error) {
	user, err := currentUserSID()
	if err != nil {
		return "", err
	}
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	ace := func(sid string) string { return "(A;" + inherit + ";FA;;;" + sid + ")" }
	return "D:P" + ace("SY") + ace("BA") + ace(ServiceSID(ServiceName)) + ace(user), nil
}

var currentUserSID = sync.OnceValues(func() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("reading the process user: %w", err)
	}
	return u.User.Sid.String(), nil
})

func securityAttributes(dir bool) (*windows.SecurityAttributes, error) {
	s, err := sddl(dir)
	if err != nil {
		return nil, err
	}
	sd, err := windows.SecurityDescriptorFromString(s)
	if err != nil {
		return nil, fmt.Errorf("building security descriptor: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}

// createPrivate creates the temporary file with its DACL already in place: there is no moment
// at which the secret sits in a file that inherited %ProgramData%'s "Users: read".
func createPrivate(dir, pattern string) (*os.File, error) {
	sa, err := securityAttributes(false)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 100; i++ {
		name := filepath.Join(dir, replaceStar(pattern, strconv.FormatInt(time.Now().UnixNano()+int64(i), 36)))
		p, err := windows.UTF16PtrFromString(name)
		if err != nil {
			return nil, err
		}
		h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, sa,
			windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
		if errors.Is(err, windows.ERROR_FILE_EXISTS) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "create", Path: name, Err: err}
		}
		return os.NewFile(uintptr(h), name), nil
	}
	return nil, fmt.Errorf("creating a temporary file in %s: too many name clashes", dir)
}

func replaceStar(pattern, s string) string {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '*' {
			return pattern[:i] + s + pattern[i+1:]
		}
	}
	return pattern + s
}

// replace renames over an existing file. MoveFileEx keeps the moved file's own (explicit,
// protected) DACL; it does not take the target's or the folder's.
func replace(from, to string) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(f, t, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

// syncDir is a no-op: MOVEFILE_WRITE_THROUGH already flushed the rename.
func syncDir(string) {}

func restrict(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	sa, err := securityAttributes(fi.IsDir())
	if err != nil {
		return err
	}
	dacl, _, err := sa.SecurityDescriptor.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// check reads the DACL back and refuses any entry that grants access to a SID outside the
// allowed set, and a DACL that still inherits from the parent.
func check(path string) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the access list of %s: %w", path, err)
	}
	control, _, err := sd.Control()
	if err != nil {
		return err
	}
	if control&windows.SE_DACL_PROTECTED == 0 {
		return fmt.Errorf("%s inherits access from its folder; it must have its own protected access list", path)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("reading the access list of %s: %w", path, err)
	}
	if dacl == nil {
		return fmt.Errorf("%s has no access list (everyone may read it)", path)
	}
	user, err := currentUserSID()
	if err != nil {
		return err
	}
	allowed := map[string]bool{"S-1-5-18": true, "S-1-5-32-544": true, ServiceSID(ServiceName): true, user: true}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return fmt.Errorf("reading the access list of %s: %w", path, err)
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String()
		if !allowed[sid] {
			return fmt.Errorf("%s grants access to %s; only SYSTEM, Administrators, the CertAgent service and the agent's account may read it", path, sid)
		}
	}
	return nil
}
