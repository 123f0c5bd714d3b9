package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
)

// readyTimeout bounds the wait for the examples to become Ready.
const readyTimeout = 5 * time.Minute

// applyExamples applies deploy/examples and waits until the CertificateAuthority and every
// Certificate is Ready, printing each as it becomes so.
func (d *demo) applyExamples(ctx context.Context) (string, error) {
	ns := d.opts.namespace
	if err := d.kubectl(ctx, "create", "namespace", ns); err != nil {
		return "", err
	}
	if err := d.kubectl(ctx, "apply", "-n", ns, "-f", filepath.Join(d.root, "deploy", "examples")); err != nil {
		return "", err
	}
	cs, err := clientset.NewForConfig(d.env.RESTConfig)
	if err != nil {
		return "", err
	}
	api := cs.ClusterpkiV1alpha1()
	start := time.Now()
	deadline := start.Add(readyTimeout)
	seen := map[string]bool{}
	for {
		var pending []string
		cas, err := api.CertificateAuthorities(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		certs, err := api.Certificates(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		total := len(cas.Items) + len(certs.Items)
		note := func(kind, name string, conds []metav1.Condition) {
			key := kind + "/" + name
			c := apimeta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue {
				if !seen[key] {
					seen[key] = true
					fmt.Fprintf(d.out, "      %-45s Ready after %v  (%d/%d)\n", key, time.Since(start).Round(100*time.Millisecond), len(seen), total)
				}
				return
			}
			why := "no Ready condition yet"
			if c != nil {
				why = fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
			}
			pending = append(pending, key+": "+why)
		}
		for _, ca := range cas.Items {
			note("CertificateAuthority", ca.Name, ca.Status.Conditions)
		}
		for _, c := range certs.Items {
			note("Certificate", c.Name, c.Status.Conditions)
		}
		if len(pending) == 0 && total > 0 {
			return fmt.Sprintf("%d CertificateAuthority, %d Certificates", len(cas.Items), len(certs.Items)), nil
		}
		for _, op := range d.operators {
			if p := op.Process(); p != nil {
				if done, _ := p.Exited(); done {
					return "", &stepError{step: "Wait for the examples", log: p.LogPath, err: p.ExitError()}
				}
			}
		}
		if time.Now().After(deadline) {
			return "", &stepError{
				step: "Wait for the examples",
				log:  d.logPath("ca-operator") + ", " + d.logPath("cert-operator"),
				err:  fmt.Errorf("not Ready after %v:\n%s", readyTimeout, indent(strings.Join(pending, "\n"))),
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// printTable prints the CA and the certificates: name, subject, SANs, not-after, Ready.
func (d *demo) printTable(ctx context.Context) error {
	ns := d.opts.namespace
	cs, err := clientset.NewForConfig(d.env.RESTConfig)
	if err != nil {
		return err
	}
	api := cs.ClusterpkiV1alpha1()
	core := d.env.KubeClient.CoreV1()
	fmt.Fprintf(d.out, "\nIssued in namespace %s (CA in Vault mounts clusterpki/%s/%s/root and .../issuing):\n\n", ns, ns, caName)
	w := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tSUBJECT\tSANs\tNOT AFTER\tREADY")

	cas, err := api.CertificateAuthorities(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var issuing *x509.Certificate
	for _, ca := range cas.Items {
		root := "-"
		notAfter := "-"
		if cm, err := core.ConfigMaps(ns).Get(ctx, ca.Name+"-ca", metav1.GetOptions{}); err == nil {
			if certs, err := contract.ParseCertificates([]byte(cm.Data["ca.crt"])); err == nil && len(certs) > 0 {
				root = subject(certs[0])
				notAfter = certs[0].NotAfter.UTC().Format(time.DateOnly)
			}
		}
		fmt.Fprintf(w, "  pkica/%s (root)\t%s\t-\t%s\t%s\n", ca.Name, root, notAfter, ready(ca.Status.Conditions))
	}
	certs, err := api.Certificates(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var rows []string
	for _, c := range certs.Items {
		subj, sans, notAfter := "-", "-", "-"
		if s, err := core.Secrets(ns).Get(ctx, c.Spec.SecretName, metav1.GetOptions{}); err == nil {
			if chain, err := contract.ParseCertificates(s.Data["tls.crt"]); err == nil && len(chain) > 0 {
				leaf := chain[0]
				subj, sans = subject(leaf), strings.Join(sanList(leaf), ",")
				if sans == "" {
					sans = "-"
				}
				notAfter = leaf.NotAfter.UTC().Format(time.DateOnly)
				if len(chain) > 1 && issuing == nil {
					issuing = chain[1]
				}
			}
		}
		rows = append(rows, fmt.Sprintf("  pkicert/%s\t%s\t%s\t%s\t%s\n", c.Name, subj, truncate(sans, 60), notAfter, ready(c.Status.Conditions)))
	}
	if issuing != nil {
		fmt.Fprintf(w, "  pkica/%s (issuing)\t%s\t-\t%s\t-\n", caName, subject(issuing), issuing.NotAfter.UTC().Format(time.DateOnly))
	}
	slices.Sort(rows)
	for _, r := range rows {
		fmt.Fprint(w, r)
	}
	return w.Flush()
}

func ready(conds []metav1.Condition) string {
	c := apimeta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	if c == nil {
		return "Unknown"
	}
	if c.Status == metav1.ConditionTrue {
		return "True"
	}
	return string(c.Status) + " (" + c.Reason + ")"
}

func subject(c *x509.Certificate) string {
	s := "CN=" + c.Subject.CommonName
	for _, o := range c.Subject.Organization {
		s += ",O=" + o
	}
	return s
}

func sanList(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
