// Package pkipath is the one home of clusterpki's Vault layout: where a CertificateAuthority's
// mounts live and which paths the operators call inside them. Both operators, the tests and
// the benchmark compute paths here, so the layout and the shipped Vault policies
// (deploy/vault/*.hcl) can only change together.
//
// Every mount lives under one prefix and below the CertificateAuthority's own namespace:
//
//	<prefix>/<namespace>/<clusterID>/root     the root CA (signs only issuing CAs)
//	<prefix>/<namespace>/<clusterID>/issuing  the issuing CA and its roles
//
// so two namespaces can never collide, squat on or learn of each other's mounts, whatever
// clusterIDs they choose, and a Vault policy can name exactly the paths an operator needs.
package pkipath

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultPrefix is the Vault path under which clusterpki keeps every mount it makes.
const DefaultPrefix = "clusterpki"

// Segment names of the two mounts of a CA.
const (
	RootSegment    = "root"
	IssuingSegment = "issuing"
)

// Mounts are the Vault mount paths of one CertificateAuthority.
type Mounts struct {
	Root    string
	Issuing string
}

// ValidatePrefix reports why prefix cannot be a mount prefix: it must be one or more
// slash-separated DNS labels (no leading, trailing or double slash), and not a Vault system
// path such as sys/, auth/, identity/ or cubbyhole/.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("mount prefix is empty")
	}
	for _, seg := range strings.Split(prefix, "/") {
		if errs := validation.IsDNS1123Label(seg); len(errs) > 0 {
			return fmt.Errorf("mount prefix %q: segment %q: %s", prefix, seg, strings.Join(errs, "; "))
		}
	}
	switch first, _, _ := strings.Cut(prefix, "/"); first {
	case "sys", "auth", "identity", "cubbyhole", "token":
		return fmt.Errorf("mount prefix %q: %s/ is reserved by Vault", prefix, first)
	}
	return nil
}

// For returns the mounts of the CertificateAuthority with clusterID in namespace. It refuses
// a namespace or clusterID that is not a DNS label, so no value from an object can make a
// path that leaves its own place below the prefix.
func For(prefix, namespace, clusterID string) (Mounts, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return Mounts{}, err
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return Mounts{}, fmt.Errorf("namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(clusterID); len(errs) > 0 {
		return Mounts{}, fmt.Errorf("clusterID %q: %s", clusterID, strings.Join(errs, "; "))
	}
	base := prefix + "/" + namespace + "/" + clusterID + "/"
	return Mounts{Root: base + RootSegment, Issuing: base + IssuingSegment}, nil
}

// SignPath is the path that signs a CSR with role on the issuing mount.
func (m Mounts) SignPath(role string) string { return m.Issuing + "/sign/" + role }

// RevokePath is the path that revokes certificates of the issuing mount.
func (m Mounts) RevokePath() string { return m.Issuing + "/revoke" }

// Within reports whether path lies strictly below prefix (prefix "clusterpki" holds
// "clusterpki/a/b/issuing/sign/r" but not "clusterpki-x/..." or "clusterpki/../sys/x").
func Within(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix+"/") {
		return false
	}
	for _, seg := range strings.Split(strings.TrimPrefix(path, prefix+"/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
