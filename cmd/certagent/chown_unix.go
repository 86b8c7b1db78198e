//go:build !windows

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// chownToUser gives the folders to the account the service runs as.
func chownToUser(name string, dirs ...string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("--user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range dirs {
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
