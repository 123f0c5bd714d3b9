package commands

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// whyReport is the reason chain of one Certificate: each link names an object, what its status
// says, and the latest Warning events that carry Vault's own words.
type whyReport struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Ready     bool      `json:"ready"`
	Chain     []whyLink `json:"chain"`
}

// whyLink is one object on the way down from the Certificate to Vault.
type whyLink struct {
	Object   string       `json:"object"`
	Status   string       `json:"status"` // the Ready condition: "False", "True", "Unknown", "NotFound"
	Reason   string       `json:"reason,omitempty"`
	Message  string       `json:"message,omitempty"`
	Since    *metav1.Time `json:"since,omitempty"`
	Detail   []string     `json:"detail,omitempty"`
	Warnings []eventEntry `json:"warnings,omitempty"`
}

func newWhy(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "why NAME",
		Short: "Why a Certificate is not Ready: its condition, its CA's condition, and what Vault said",
		Example: `  kubectl clusterpki why kube-apiserver -n tenant-a
  kubectl clusterpki why kube-apiserver -n tenant-a -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.why(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if done, err := o.printStructured(r); done {
				return err
			}
			printWhy(o.out, r, o.now())
			return nil
		},
	}
}

// why follows the Certificate's Ready condition down to its CA's condition, collecting the
// recent Warning events of both (the operators put Vault's answer in them).
func (o *options) why(ctx context.Context, name string) (*whyReport, error) {
	cert, err := o.pki.ClusterpkiV1alpha1().Certificates(o.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	r := &whyReport{Namespace: cert.Namespace, Name: cert.Name}
	link := whyLink{Object: "Certificate " + cert.Namespace + "/" + cert.Name, Status: "Unknown"}
	ready := findCondition(cert.Status.Conditions, v1alpha1.ConditionReady)
	if ready != nil {
		link.Status, link.Reason, link.Message, link.Since = string(ready.Status), ready.Reason, ready.Message, ready.LastTransitionTime.DeepCopy()
		r.Ready = ready.Status == metav1.ConditionTrue
		if ready.ObservedGeneration < cert.Generation {
			link.Detail = append(link.Detail, fmt.Sprintf("the condition describes generation %d; the spec is at %d (the cert-operator has not seen the change yet)", ready.ObservedGeneration, cert.Generation))
		}
	} else {
		link.Detail = append(link.Detail, "no status yet: is the cert-operator running and watching this namespace?")
	}
	if c := findCondition(cert.Status.Conditions, v1alpha1.ConditionIssuing); c != nil && c.Status == metav1.ConditionTrue {
		link.Detail = append(link.Detail, "issuing: "+c.Reason+": "+c.Message)
	}
	if n := cert.Status.FailedIssuanceAttempts; n > 0 {
		d := fmt.Sprintf("%d failed issuance attempt(s)", n)
		if t := cert.Status.LastFailureTime; t != nil {
			d += ", the last " + ago(o.now(), t.Time) + " ago"
		}
		link.Detail = append(link.Detail, d)
	}
	if link.Warnings, err = o.warnings(ctx, cert.Namespace, "Certificate", cert.Name); err != nil {
		return nil, err
	}
	r.Chain = append(r.Chain, link)
	if r.Ready {
		return r, nil
	}

	caName := cert.Spec.CARef.Name
	caLink := whyLink{Object: "CertificateAuthority " + cert.Namespace + "/" + caName, Status: "Unknown"}
	ca, err := o.pki.ClusterpkiV1alpha1().CertificateAuthorities(cert.Namespace).Get(ctx, caName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		caLink.Status = "NotFound"
		caLink.Detail = append(caLink.Detail, "caRef names a CertificateAuthority that does not exist in this namespace")
		r.Chain = append(r.Chain, caLink)
		return r, nil
	case err != nil:
		return nil, err
	}
	if c := findCondition(ca.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		caLink.Status, caLink.Reason, caLink.Message, caLink.Since = string(c.Status), c.Reason, c.Message, c.LastTransitionTime.DeepCopy()
	} else {
		caLink.Detail = append(caLink.Detail, "no status yet: is the ca-operator running and watching this namespace?")
	}
	if c := findCondition(ca.Status.Conditions, v1alpha1.ConditionRootExpiring); c != nil && c.Status == metav1.ConditionTrue {
		caLink.Detail = append(caLink.Detail, "root expiring: "+c.Message)
	}
	if cert.Spec.Role != "" && !hasRole(ca, cert.Spec.Role) {
		caLink.Detail = append(caLink.Detail, fmt.Sprintf("has no provisioned role %q", cert.Spec.Role))
	}
	if caLink.Warnings, err = o.warnings(ctx, ca.Namespace, "CertificateAuthority", ca.Name); err != nil {
		return nil, err
	}
	r.Chain = append(r.Chain, caLink)
	return r, nil
}

// hasRole reports whether the CA's status lists role as provisioned.
func hasRole(ca *v1alpha1.CertificateAuthority, role string) bool {
	for _, r := range ca.Status.Roles {
		if r.Name == role {
			return true
		}
	}
	return false
}

// warnings returns the last three Warning events about the object.
func (o *options) warnings(ctx context.Context, ns, kind, name string) ([]eventEntry, error) {
	all, err := o.events(ctx, ns, kind, name, 50)
	if err != nil {
		return nil, err
	}
	var out []eventEntry
	for _, e := range all {
		if e.Type == "Warning" {
			out = append(out, e)
		}
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	return out, nil
}

// printWhy writes the chain as numbered links, the deepest last.
func printWhy(w io.Writer, r *whyReport, now time.Time) {
	if r.Ready {
		fmt.Fprintf(w, "Certificate %s/%s is Ready: nothing to explain.\n", r.Namespace, r.Name)
	} else {
		fmt.Fprintf(w, "Certificate %s/%s is not Ready, because:\n", r.Namespace, r.Name)
	}
	for i, l := range r.Chain {
		line := fmt.Sprintf("%d. %s: Ready=%s", i+1, l.Object, l.Status)
		if l.Reason != "" {
			line += " " + l.Reason
		}
		if l.Since != nil {
			line += " (since " + ago(now, l.Since.Time) + ")"
		}
		fmt.Fprintln(w, line)
		if l.Message != "" {
			fmt.Fprintf(w, "   %s\n", l.Message)
		}
		for _, d := range l.Detail {
			fmt.Fprintf(w, "   - %s\n", d)
		}
		for _, e := range l.Warnings {
			fmt.Fprintf(w, "   event %s %s (%s ago, x%d): %s\n", e.Type, e.Reason, ago(now, e.Last), max(e.Count, 1), e.Message)
		}
	}
}
