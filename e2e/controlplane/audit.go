package controlplane

import (
	"os"
	"path/filepath"
	"time"
)

// auditPolicy records the requests of ServiceAccounts (the collectors: the
// sub-receivers' lists and watches, their Lease requests) at Metadata level,
// every stage, and nothing else (admin, the control plane's own clients),
// to keep the log small. See package audit for what reads it.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
`

// auditArgs are kube-apiserver's audit flags: JSON lines to AuditLog,
// written before the request proceeds (blocking), one file for the control
// plane's whole life (kube-apiserver restarts append to it; no rotation
// below 10 GB).
func (c *ControlPlane) auditArgs() []string {
	return []string{
		"--audit-policy-file=" + filepath.Join(c.Dir, "audit-policy.yaml"),
		"--audit-log-path=" + c.AuditLog,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--audit-log-maxsize=10000",
	}
}

func (c *ControlPlane) writeAuditPolicy() error {
	return os.WriteFile(filepath.Join(c.Dir, "audit-policy.yaml"), []byte(auditPolicy), 0o644)
}

// APIServerExits are the times at which kube-apiserver processes of this
// control plane exited (seen by the harness shortly after): a request still
// open in the audit log at such a time ended then.
func (c *ControlPlane) APIServerExits() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.apiserverExits...)
}
