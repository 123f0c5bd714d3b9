package rotation

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// verify checks chain (a Secret's tls.crt: the leaf, then what it presents as intermediates)
// as a TLS peer holding only roots would, for any usage.
func verify(chain []*x509.Certificate, roots ...*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	pool, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// issuedUnder reports whether chain holds a certificate that root signed (other than root
// itself): the leaf was issued by an issuing CA of root's. The certificate of the new root
// cross-signed by the old one carries the new root's key but the old root's signature, so it
// does not count for either.
func issuedUnder(chain []*x509.Certificate, root *x509.Certificate) bool {
	for _, c := range chain {
		if !contract.IsSelfSigned(c) && c.CheckSignatureFrom(root) == nil {
			return true
		}
	}
	return false
}

// fingerprints returns the sorted fingerprints of certs, the form of trustedRootsSHA256.
func fingerprints(certs ...*x509.Certificate) []string { return contract.Fingerprints(certs) }

// secretView is one Secret as its consumer reads it.
type secretView struct {
	chain  []*x509.Certificate // tls.crt
	trust  []*x509.Certificate // ca.crt
	serial string
}

// view is what the clients of one CA see at one moment: the CA, the roots its ConfigMap
// publishes and its Certificates' Secrets. stable says that the CA's phase was the same after
// the Secrets were read as before.
type view struct {
	ca      *v1alpha1.CertificateAuthority
	bundle  []*x509.Certificate
	secrets map[string]secretView
	stable  bool
}

// readView reads CA ns/name, its ConfigMap, the Secrets of certs, then the CA again.
func readView(ctx context.Context, t *testing.T, ns, name string, certs []string) (*view, error) {
	cas := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(ns)
	ca, err := cas.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	v := &view{ca: ca, secrets: map[string]secretView{}}
	cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, contract.ConfigMapName(name), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if v.bundle, err = contract.ParseCertificates([]byte(cm.Data[contract.TrustKey])); err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %w", cm.Name, err)
	}
	for _, c := range certs {
		s, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, c, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		var sv secretView
		if sv.chain, err = contract.ParseCertificates(s.Data[corev1.TLSCertKey]); err != nil {
			return nil, fmt.Errorf("Secret %s tls.crt: %w", c, err)
		}
		if sv.trust, err = contract.ParseCertificates(s.Data[contract.TrustKey]); err != nil {
			return nil, fmt.Errorf("Secret %s ca.crt: %w", c, err)
		}
		sv.serial = contract.Serial(sv.chain[0].SerialNumber)
		v.secrets[c] = sv
	}
	again, err := cas.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	v.stable = phase(again) == phase(ca)
	return v, nil
}

// newRootOf returns the new root of ca's rotation from its trust bundle (nil before Trusting
// publishes it).
func newRootOf(ca *v1alpha1.CertificateAuthority) (*x509.Certificate, error) {
	r := ca.Status.RootRotation
	if r == nil || r.NewRoot == nil {
		return nil, nil
	}
	bundle, err := contract.TrustBundle(ca)
	if err != nil {
		return nil, err
	}
	for _, c := range bundle {
		if contract.Fingerprint(c) == r.NewRoot.FingerprintSHA256 {
			return c, nil
		}
	}
	if phase(ca) == v1alpha1.RootRotationPreparing {
		return nil, nil // not published yet
	}
	return nil, fmt.Errorf("status.rootRotation.newRoot %s is not in status.trustBundle (phase %s)", r.NewRoot.FingerprintSHA256, phase(ca))
}

// bundlePublished waits until the ConfigMap of CA ns/name holds the same bytes as the CA's
// status.trustBundle (the ca-operator writes them one after the other) and returns them.
func bundlePublished(ctx context.Context, t *testing.T, ns, name string) (string, error) {
	var got string
	err := poll(ctx, 15*time.Second, func() error {
		ca, err := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, contract.ConfigMapName(name), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got = cm.Data[contract.TrustKey]; got != ca.Status.TrustBundle {
			return fmt.Errorf("ConfigMap %s ca.crt differs from status.trustBundle (phase %q)", cm.Name, phase(ca))
		}
		return nil
	})
	return got, err
}

// checkCompleted waits until the rotation of CA ns/name is complete and every Certificate
// moved and trusts only the new root, then checks the end state: status.root is the new root,
// the ConfigMap publishes it alone, every chain verifies against it, the root mount holds
// exactly one issuer and one key (the new root's), the issuing mount no longer holds the old
// root or the cross-signed certificate, and Vault's audit log shows exactly one successful
// root/rotate/internal on the root mount. It returns the new root.
func checkCompleted(ctx context.Context, t *testing.T, ns, name string, certs []string, oldRoot *x509.Certificate) *x509.Certificate {
	t.Helper()
	c := pkiClient(t).ClusterpkiV1alpha1()
	var ca *v1alpha1.CertificateAuthority
	var newRoot *x509.Certificate
	eventually(ctx, t, 90*time.Second, fmt.Sprintf("CA %s/%s completed, every Certificate moved and trusting the new root only", ns, name), func() error {
		var err error
		if ca, err = c.CertificateAuthorities(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if p := phase(ca); p != v1alpha1.RootRotationCompleted {
			return fmt.Errorf("phase %q", p)
		}
		bundle, err := contract.TrustBundle(ca)
		if err != nil {
			return err
		}
		if len(bundle) != 1 {
			return fmt.Errorf("trust bundle holds %d roots after completion, want the new one", len(bundle))
		}
		newRoot = bundle[0]
		want := fingerprints(newRoot)
		for _, name := range certs {
			cert, err := c.Certificates(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := cert.Status
			if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
				return fmt.Errorf("Certificate %s not Ready: %v", name, st.Conditions)
			}
			if st.RootFingerprintSHA256 != want[0] || !slices.Equal(st.TrustedRootsSHA256, want) {
				return fmt.Errorf("Certificate %s: rootFingerprintSHA256 %s, trustedRootsSHA256 %v; want %s", name, st.RootFingerprintSHA256, st.TrustedRootsSHA256, want[0])
			}
			s, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			trust, err := contract.ParseCertificates(s.Data[contract.TrustKey])
			if err != nil {
				return err
			}
			if !slices.Equal(fingerprints(trust...), want) {
				return fmt.Errorf("Secret %s ca.crt holds %v, want the new root only", name, fingerprints(trust...))
			}
		}
		return nil
	})
	r := ca.Status.RootRotation
	newFP := contract.Fingerprint(newRoot)
	if r.NewRoot == nil || r.NewRoot.FingerprintSHA256 != newFP {
		t.Errorf("status.rootRotation.newRoot %+v, want the bundle's root %s", r.NewRoot, newFP)
	}
	if ca.Status.Root == nil || ca.Status.Root.FingerprintSHA256 != newFP {
		t.Errorf("status.root %+v, want the new root %s", ca.Status.Root, newFP)
	}
	if newFP == contract.Fingerprint(oldRoot) {
		t.Errorf("the new root is the old root")
	}
	if r.CompletionTime == nil {
		t.Errorf("status.rootRotation.completionTime unset")
	}
	if cond := meta.FindStatusCondition(ca.Status.Conditions, v1alpha1.ConditionRootRotating); cond != nil && cond.Status == metav1.ConditionTrue {
		t.Errorf("condition RootRotating still True after completion: %+v", cond)
	}
	if published, err := bundlePublished(ctx, t, ns, name); err != nil {
		t.Error(err)
	} else if certs, err := contract.ParseCertificates([]byte(published)); err != nil || !slices.Equal(fingerprints(certs...), fingerprints(newRoot)) {
		t.Errorf("ConfigMap publishes %v (%v), want the new root only", fingerprints(certs...), err)
	}
	for _, name := range certs {
		s, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		chain, err := contract.ParseCertificates(s.Data[corev1.TLSCertKey])
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(chain, newRoot); err != nil || !issuedUnder(chain, newRoot) {
			t.Errorf("Secret %s after the rotation: verify against the new root: %v; issued under it: %v", name, err, issuedUnder(chain, newRoot))
		}
	}
	checkVaultAfter(ctx, t, ca, oldRoot, newRoot)
	checkOneRootMade(ctx, t, ca)
	return newRoot
}

// checkOneRootMade checks in Vault's audit log that the rotation of ca asked its root mount
// for a new root only under the rotation's name, root-<tag>, and that exactly one such
// request succeeded. Vault makes a name unique atomically, so no second root can have been
// made. One exception is allowed and logged: when the operator was killed while Vault made the
// root, Vault records the request as failed (context canceled) though the root exists; then
// no request may have succeeded.
func checkOneRootMade(ctx context.Context, t *testing.T, ca *v1alpha1.CertificateAuthority) {
	t.Helper()
	name := "root-" + ca.Status.RootRotation.Tag
	r, err := rootRotations(ctx, ca.Status.RootMount, name)
	if err != nil {
		t.Error(err)
		return
	}
	switch {
	case r.otherNames > 0:
		t.Errorf("%s: new roots were asked for under another name than %s: %v", ca.Status.RootMount, name, r)
	case r.made == 1:
		t.Logf("%s/%s: exactly one root made: %v", ca.Namespace, ca.Name, r)
	case r.made == 0 && r.cut > 0:
		t.Logf("%s/%s: the request that made the root was cut off by a kill: %v", ca.Namespace, ca.Name, r)
	default:
		t.Errorf("%s: Vault's audit log shows %v; want exactly one root made", ca.Status.RootMount, r)
	}
}

// checkVaultAfter reads the CA's mounts with the root token: the root mount must hold exactly
// one issuer and one key, the issuer's certificate being the new root, and no issuer of the
// issuing mount may be the old root or the cross-signed certificate any more.
func checkVaultAfter(ctx context.Context, t *testing.T, ca *v1alpha1.CertificateAuthority, oldRoot, newRoot *x509.Certificate) {
	t.Helper()
	v, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	list := func(path string) []string {
		s, err := v.Logical().ListWithContext(ctx, path)
		if err != nil || s == nil {
			t.Fatalf("LIST %s: %v (%v)", path, err, s)
		}
		var out []string
		for _, k := range s.Data["keys"].([]any) {
			out = append(out, k.(string))
		}
		return out
	}
	issuerCert := func(mount, id string) *x509.Certificate {
		s, err := v.Logical().ReadWithContext(ctx, mount+"/issuer/"+id)
		if err != nil || s == nil {
			t.Fatalf("GET %s/issuer/%s: %v", mount, id, err)
		}
		c, err := contract.ParseCertificate([]byte(s.Data["certificate"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := ca.Status.RootMount
	issuers, keys := list(root+"/issuers"), list(root+"/keys")
	if len(issuers) != 1 || len(keys) != 1 {
		t.Errorf("root mount %s holds issuers %v and keys %v, want exactly one of each", root, issuers, keys)
	}
	for _, id := range issuers {
		if got := contract.Fingerprint(issuerCert(root, id)); got != contract.Fingerprint(newRoot) {
			t.Errorf("root mount issuer %s is %s, want the new root %s", id, got, contract.Fingerprint(newRoot))
		}
	}
	retired := map[string]string{contract.Fingerprint(oldRoot): "the old root"}
	if cs := ca.Status.RootRotation.CrossSigned; cs != nil {
		retired[cs.FingerprintSHA256] = "the cross-signed root"
	}
	for _, id := range list(ca.Status.IssuingMount + "/issuers") {
		if what, ok := retired[contract.Fingerprint(issuerCert(ca.Status.IssuingMount, id))]; ok {
			t.Errorf("issuing mount %s still holds %s as issuer %s", ca.Status.IssuingMount, what, id)
		}
	}
}

// auditEntry is the part of a Vault audit log line the tests read.
type auditEntry struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Error   string    `json:"error"`
	Request struct {
		Path string         `json:"path"`
		Data map[string]any `json:"data"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// rotations counts what Vault's audit log shows of the requests to make a new root in a mount.
type rotations struct {
	// requests counts the requests; otherNames those that asked for an issuer or key name
	// other than the rotation's.
	requests, otherNames int
	// made counts the responses that returned a new issuer; cut those whose client went away
	// (an operator killed while it waited: context canceled), which may or may not have made
	// the root; refused the others (a repeat answers "issuer name already in use").
	made, cut, refused int
}

// String says what the counts are.
func (r rotations) String() string {
	return fmt.Sprintf("%d request(s), %d asking for another name; %d made a root, %d cut off by a kill, %d refused",
		r.requests, r.otherNames, r.made, r.cut, r.refused)
}

// rootRotations reads Vault's audit log for <mount>/root/rotate/internal. Each request's
// issuer_name and key_name are compared with name through the audit device's own HMAC
// (sys/audit-hash), since the log holds only their hashes.
func rootRotations(ctx context.Context, mount, name string) (rotations, error) {
	var r rotations
	v, err := env.VaultClient()
	if err != nil {
		return r, err
	}
	hashed, err := v.Sys().AuditHashWithContext(ctx, "file", name)
	if err != nil {
		return r, err
	}
	f, err := os.Open(auditLog)
	if err != nil {
		return r, err
	}
	defer f.Close()
	path := strings.TrimSuffix(mount, "/") + "/root/rotate/internal"
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for s.Scan() {
		if !strings.Contains(s.Text(), path) {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return r, fmt.Errorf("audit log: %w", err)
		}
		if e.Request.Path != path {
			continue
		}
		switch e.Type {
		case "request":
			r.requests++
			if e.Request.Data["issuer_name"] != hashed || e.Request.Data["key_name"] != hashed {
				r.otherNames++
			}
		case "response":
			_, refused := e.Response.Data["error"]
			_, made := e.Response.Data["issuer_id"]
			switch {
			case made && e.Error == "" && !refused:
				r.made++
			case strings.Contains(e.Error, "context canceled"):
				r.cut++
			default:
				r.refused++
			}
		}
	}
	return r, s.Err()
}

// signRequests returns when Vault received each sign request on the issuing mount since
// since, in order, from its audit log.
func signRequests(mount string, since time.Time) ([]time.Time, error) {
	f, err := os.Open(auditLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := strings.TrimSuffix(mount, "/") + "/sign/"
	var out []time.Time
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for s.Scan() {
		if !strings.Contains(s.Text(), prefix) {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if e.Type == "request" && strings.HasPrefix(e.Request.Path, prefix) && !e.Time.Before(since) {
			out = append(out, e.Time)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out, s.Err()
}
