package pgcluster

import "syscall"

// sysProcAttr runs a server binary as the unprivileged user under root, in
// its own process group (a terminal's Ctrl-C reaches us, and we stop the
// server in order). For the long-running server, the kernel sends it SIGINT
// (fast shutdown) if this process dies without calling Stop.
func (c *Cluster) sysProcAttr(server bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if server {
		attr.Pdeathsig = syscall.SIGINT
	}
	if c.runAs != nil {
		attr.Credential = &syscall.Credential{Uid: c.runAs.uid, Gid: c.runAs.gid, Groups: []uint32{}}
	}
	return attr
}
