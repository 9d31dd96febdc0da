//go:build !linux

package pgcluster

import "syscall"

// sysProcAttr runs a server binary as the unprivileged user under root, in
// its own process group (a terminal's Ctrl-C reaches us, and we stop the
// server in order).
func (c *Cluster) sysProcAttr(bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if c.runAs != nil {
		attr.Credential = &syscall.Credential{Uid: c.runAs.uid, Gid: c.runAs.gid, Groups: []uint32{}}
	}
	return attr
}
