package commands

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// trustConfigMap names the ConfigMap in which the ca-operator publishes CA ca's trust bundle
// (key ca.crt), as DESIGN.md and the README state.
func trustConfigMap(ca string) string { return ca + "-ca" }

// trustKey is the ConfigMap key of the bundle.
const trustKey = "ca.crt"

// certReport is everything `inspect cert` shows about one Certificate.
type certReport struct {
	Namespace   string             `json:"namespace"`
	Name        string             `json:"name"`
	CA          string             `json:"ca"`
	Secret      string             `json:"secret"`
	Conditions  []metav1.Condition `json:"conditions,omitempty"`
	RenewalTime *metav1.Time       `json:"renewalTime,omitempty"`
	// Leaf and Chain are decoded from the Secret's tls.crt (leaf first, then intermediates).
	Leaf  *certDetails  `json:"leaf,omitempty"`
	Chain []certDetails `json:"chain,omitempty"`
	// Checks are the verdicts on the Secret: key matches, chain verifies against the published
	// root, Secret's ca.crt is the published root, status serial matches.
	Checks []check      `json:"checks"`
	Events []eventEntry `json:"events,omitempty"`
}

// certDetails is one decoded X.509 certificate.
type certDetails struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprintSHA256"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	PublicKey   string    `json:"publicKey"`
	IsCA        bool      `json:"isCA,omitempty"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	IPAddresses []string  `json:"ipAddresses,omitempty"`
	URIs        []string  `json:"uris,omitempty"`
	KeyUsages   []string  `json:"keyUsages,omitempty"`
}

// check is one verdict with the reason when it fails.
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// eventEntry is one Kubernetes event about an object.
type eventEntry struct {
	Object  string    `json:"object"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
	Last    time.Time `json:"last"`
}

func newInspect(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show one object decoded",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "cert NAME",
		Aliases: []string{"certificate", "pkicert"},
		Short:   "A Certificate's Secret decoded (subject, SANs, usages, validity, serial, chain), key and chain checks, conditions and recent events",
		Example: "  kubectl clusterpki inspect cert kube-apiserver -n tenant-a",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.inspectCertificate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if done, err := o.printStructured(r); done {
				return err
			}
			return printCertReport(o.out, r, o.now())
		},
	})
	return cmd
}

// inspectCertificate reads the Certificate, its Secret, the CA's published root and the
// events, and judges the Secret against them.
func (o *options) inspectCertificate(ctx context.Context, name string) (*certReport, error) {
	cert, err := o.pki.ClusterpkiV1alpha1().Certificates(o.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	r := &certReport{
		Namespace: cert.Namespace, Name: cert.Name, CA: cert.Spec.CARef.Name, Secret: cert.Spec.SecretName,
		Conditions: cert.Status.Conditions, RenewalTime: cert.Status.RenewalTime,
	}
	if r.Events, err = o.events(ctx, cert.Namespace, "Certificate", cert.Name, 10); err != nil {
		return nil, err
	}
	secret, err := o.kube.CoreV1().Secrets(cert.Namespace).Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.Checks = append(r.Checks, check{Name: "secret exists", Detail: fmt.Sprintf("Secret %s/%s does not exist (yet)", cert.Namespace, cert.Spec.SecretName)})
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	chain, err := contract.ParseCertificates(secret.Data[corev1.TLSCertKey])
	if err != nil {
		r.Checks = append(r.Checks, check{Name: "tls.crt parses", Detail: err.Error()})
		return r, nil
	}
	leaf := describe(chain[0])
	r.Leaf = &leaf
	for _, c := range chain[1:] {
		r.Chain = append(r.Chain, describe(c))
	}

	// The key matches the leaf: crypto/tls refuses a pair whose public keys differ.
	if _, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]); err != nil {
		r.Checks = append(r.Checks, check{Name: "key matches certificate", Detail: err.Error()})
	} else {
		r.Checks = append(r.Checks, check{Name: "key matches certificate", OK: true})
	}

	// The chain verifies against the root the ca-operator publishes, not against whatever the
	// Secret itself carries.
	cm, err := o.kube.CoreV1().ConfigMaps(cert.Namespace).Get(ctx, trustConfigMap(cert.Spec.CARef.Name), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.Checks = append(r.Checks, check{Name: "chain verifies against the published root",
			Detail: fmt.Sprintf("ConfigMap %s/%s (the CA's published trust) does not exist", cert.Namespace, trustConfigMap(cert.Spec.CARef.Name))})
	case err != nil:
		return nil, err
	default:
		r.Checks = append(r.Checks, verifyChain(chain, []byte(cm.Data[trustKey]), o.now()),
			sameRoots(secret.Data["ca.crt"], []byte(cm.Data[trustKey])))
	}
	if cert.Status.SerialNumber != "" {
		c := check{Name: "status serial is the Secret's", OK: cert.Status.SerialNumber == leaf.Serial}
		if !c.OK {
			c.Detail = fmt.Sprintf("status says %s, the Secret holds %s", cert.Status.SerialNumber, leaf.Serial)
		}
		r.Checks = append(r.Checks, c)
	}
	return r, nil
}

// verifyChain checks that chain[0] chains through chain[1:] to a root of bundlePEM at now.
func verifyChain(chain []*x509.Certificate, bundlePEM []byte, now time.Time) check {
	c := check{Name: "chain verifies against the published root"}
	roots, err := contract.ParseCertificates(bundlePEM)
	if err != nil {
		c.Detail = "published bundle: " + err.Error()
		return c
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, i := range chain[1:] {
		inter.AddCert(i)
	}
	verified, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK = true
	root := verified[0][len(verified[0])-1]
	c.Detail = fmt.Sprintf("%d certificates up to %s (SHA-256 %s)", len(verified[0]), root.Subject.CommonName, contract.Fingerprint(root))
	return c
}

// sameRoots checks that the Secret's ca.crt holds the same certificates as the published bundle.
func sameRoots(secretCA, bundle []byte) check {
	c := check{Name: "Secret's ca.crt is the published trust"}
	a, errA := contract.ParseCertificates(secretCA)
	b, errB := contract.ParseCertificates(bundle)
	if err := errors.Join(errA, errB); err != nil {
		c.Detail = err.Error()
		return c
	}
	// A set of roots, in any order: during a root rotation the bundle holds two.
	c.OK = contract.SameTrust(a, b)
	if !c.OK {
		c.Detail = fmt.Sprintf("ca.crt holds %d certificate(s), the published bundle %d, and they differ", len(a), len(b))
	}
	return c
}

// describe decodes the fields of c that an operator looks at.
func describe(c *x509.Certificate) certDetails {
	d := certDetails{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		Serial: contract.Serial(c.SerialNumber), Fingerprint: contract.Fingerprint(c),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		PublicKey: publicKeyName(c.PublicKey), IsCA: c.IsCA, DNSNames: c.DNSNames,
		KeyUsages: keyUsages(c),
	}
	for _, ip := range c.IPAddresses {
		d.IPAddresses = append(d.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		d.URIs = append(d.URIs, u.String())
	}
	return d
}

func publicKeyName(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// keyUsages names c's key usages and extended key usages, as openssl prints them.
func keyUsages(c *x509.Certificate) []string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digital signature"}, {x509.KeyUsageContentCommitment, "content commitment"},
		{x509.KeyUsageKeyEncipherment, "key encipherment"}, {x509.KeyUsageDataEncipherment, "data encipherment"},
		{x509.KeyUsageKeyAgreement, "key agreement"}, {x509.KeyUsageCertSign, "cert sign"},
		{x509.KeyUsageCRLSign, "crl sign"}, {x509.KeyUsageEncipherOnly, "encipher only"}, {x509.KeyUsageDecipherOnly, "decipher only"},
	}
	var out []string
	for _, n := range names {
		if c.KeyUsage&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	ext := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "server auth", x509.ExtKeyUsageClientAuth: "client auth",
		x509.ExtKeyUsageCodeSigning: "code signing", x509.ExtKeyUsageEmailProtection: "email protection",
		x509.ExtKeyUsageTimeStamping: "time stamping", x509.ExtKeyUsageOCSPSigning: "OCSP signing",
	}
	for _, u := range c.ExtKeyUsage {
		if n, ok := ext[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("ext %d", u))
		}
	}
	return out
}

// events returns the last n events about the object kind ns/name, oldest first.
func (o *options) events(ctx context.Context, ns, kind, name string, n int) ([]eventEntry, error) {
	list, err := o.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.name", name),
		fields.OneTermEqualSelector("involvedObject.kind", kind),
	).String()})
	if err != nil {
		return nil, err
	}
	var out []eventEntry
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp.Time
		}
		out = append(out, eventEntry{Object: kind + " " + ns + "/" + name, Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: last})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Last.Before(out[j].Last) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// printCertReport writes r as sections an operator reads top to bottom.
func printCertReport(w io.Writer, r *certReport, now time.Time) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("Certificate %s/%s  (CA %s, Secret %s)\n", r.Namespace, r.Name, r.CA, r.Secret)
	if c := findCondition(r.Conditions, v1alpha1.ConditionReady); c != nil {
		p("Ready:        %s\n", conditionLine(c, now))
	} else {
		p("Ready:        Unknown (no status yet)\n")
	}
	if r.RenewalTime != nil {
		p("Renewal:      %s (%s)\n", r.RenewalTime.UTC().Format(time.RFC3339), until(now, r.RenewalTime.Time))
	}
	if r.Leaf != nil {
		p("\nCertificate (tls.crt)\n")
		printDetails(w, *r.Leaf, now, "  ")
		for i, c := range r.Chain {
			p("\nIssuer chain [%d]\n", i+1)
			printDetails(w, c, now, "  ")
		}
	}
	p("\nChecks\n")
	for _, c := range r.Checks {
		mark := "FAIL"
		if c.OK {
			mark = "ok  "
		}
		line := fmt.Sprintf("  %s  %s", mark, c.Name)
		if c.Detail != "" {
			line += ": " + c.Detail
		}
		p("%s\n", line)
	}
	if len(r.Conditions) > 0 {
		p("\nConditions\n")
		rows := [][]string{}
		for _, c := range r.Conditions {
			rows = append(rows, []string{"  " + c.Type, string(c.Status), c.Reason, ago(now, c.LastTransitionTime.Time), c.Message})
		}
		if err := table(w, []string{"  TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"}, rows); err != nil {
			return err
		}
	}
	p("\nEvents\n")
	if len(r.Events) == 0 {
		p("  <none>\n")
		return nil
	}
	rows := [][]string{}
	for _, e := range r.Events {
		rows = append(rows, []string{"  " + e.Type, e.Reason, ago(now, e.Last), fmt.Sprint(e.Count), e.Message})
	}
	return table(w, []string{"  TYPE", "REASON", "AGE", "COUNT", "MESSAGE"}, rows)
}

// printDetails writes one decoded certificate, indented.
func printDetails(w io.Writer, d certDetails, now time.Time, indent string) {
	p := func(k, v string) { fmt.Fprintf(w, "%s%-13s%s\n", indent, k+":", v) }
	p("Subject", d.Subject)
	p("Issuer", d.Issuer)
	if len(d.DNSNames)+len(d.IPAddresses)+len(d.URIs) > 0 {
		var sans []string
		for _, n := range d.DNSNames {
			sans = append(sans, "DNS:"+n)
		}
		for _, n := range d.IPAddresses {
			sans = append(sans, "IP:"+n)
		}
		for _, n := range d.URIs {
			sans = append(sans, "URI:"+n)
		}
		p("SANs", strings.Join(sans, ", "))
	}
	if len(d.KeyUsages) > 0 {
		p("Usages", strings.Join(d.KeyUsages, ", "))
	}
	p("Validity", fmt.Sprintf("%s to %s (%s)", d.NotBefore.Format(time.RFC3339), d.NotAfter.Format(time.RFC3339), until(now, d.NotAfter)))
	p("Serial", d.Serial)
	p("Public key", d.PublicKey)
	p("SHA-256", d.Fingerprint)
	if d.IsCA {
		p("CA", "yes")
	}
}

// conditionLine is "False IssuanceFailed: message (since 5m)".
func conditionLine(c *metav1.Condition, now time.Time) string {
	s := string(c.Status)
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s + " (since " + ago(now, c.LastTransitionTime.Time) + ")"
}
