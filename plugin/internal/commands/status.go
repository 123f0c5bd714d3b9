package commands

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// caSummary is one row of `status`: a CertificateAuthority and how its Certificates fare.
type caSummary struct {
	Namespace       string       `json:"namespace"`
	Name            string       `json:"name"`
	Ready           string       `json:"ready"` // True, False or Unknown; NotFound when only Certificates name it
	Reason          string       `json:"reason,omitempty"`
	Message         string       `json:"message,omitempty"`
	RootNotAfter    *metav1.Time `json:"rootNotAfter,omitempty"`
	IssuingNotAfter *metav1.Time `json:"issuingNotAfter,omitempty"`
	// Rotation is the root rotation under way ("" when none runs): its phase and, while
	// Certificates move, how many have.
	Rotation     string     `json:"rotation,omitempty"`
	Certificates certCounts `json:"certificates"`
}

// certCounts counts a CA's Certificates by state. Pending is neither Ready nor failing yet
// (being issued for the first time).
type certCounts struct {
	Total        int `json:"total"`
	Ready        int `json:"ready"`
	Failing      int `json:"failing"`
	Pending      int `json:"pending"`
	RenewingSoon int `json:"renewingSoon"`
}

func newStatus(o *options) *cobra.Command {
	soon := 24 * time.Hour
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Every CertificateAuthority: Ready, root and issuing CA expiry, its Certificates by state",
		Example: `  kubectl clusterpki status -n tenant-a
  kubectl clusterpki status -A -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns := o.listNamespace()
			cas, err := o.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			certs, err := o.pki.ClusterpkiV1alpha1().Certificates(ns).List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			rows := summarize(cas.Items, certs.Items, o.now(), soon)
			if done, err := o.printStructured(rows); done {
				return err
			}
			return o.printStatus(rows)
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "All namespaces.")
	cmd.Flags().DurationVar(&soon, "soon", soon, "A Certificate whose renewal time falls within this window counts as renewing soon.")
	return cmd
}

// summarize returns one row per CertificateAuthority (and per CA that Certificates name but
// that does not exist), sorted by namespace and name.
func summarize(cas []v1alpha1.CertificateAuthority, certs []v1alpha1.Certificate, now time.Time, soon time.Duration) []caSummary {
	type key struct{ ns, name string }
	rows := map[key]*caSummary{}
	for _, ca := range cas {
		s := &caSummary{Namespace: ca.Namespace, Name: ca.Name, Ready: "Unknown"}
		if c := findCondition(ca.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			s.Ready, s.Reason, s.Message = string(c.Status), c.Reason, c.Message
		}
		if ca.Status.Root != nil {
			s.RootNotAfter = ca.Status.Root.NotAfter.DeepCopy()
		}
		if ca.Status.Issuing != nil {
			s.IssuingNotAfter = ca.Status.Issuing.NotAfter.DeepCopy()
		}
		s.Rotation = rotationSummary(ca.Status.RootRotation)
		rows[key{ca.Namespace, ca.Name}] = s
	}
	for _, c := range certs {
		k := key{c.Namespace, c.Spec.CARef.Name}
		s := rows[k]
		if s == nil {
			s = &caSummary{Namespace: k.ns, Name: k.name, Ready: "NotFound"}
			rows[k] = s
		}
		s.Certificates.Total++
		ready := findCondition(c.Status.Conditions, v1alpha1.ConditionReady)
		switch {
		case ready != nil && ready.Status == metav1.ConditionTrue:
			s.Certificates.Ready++
		case ready != nil && ready.Status == metav1.ConditionFalse, c.Status.FailedIssuanceAttempts > 0:
			s.Certificates.Failing++
		default:
			s.Certificates.Pending++
		}
		if c.Status.RenewalTime != nil && c.Status.RenewalTime.Time.Before(now.Add(soon)) {
			s.Certificates.RenewingSoon++
		}
	}
	out := make([]caSummary, 0, len(rows))
	for _, s := range rows {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// printStatus writes the rows as a table.
func (o *options) printStatus(rows []caSummary) error {
	now := o.now()
	header := []string{"CA", "READY", "ROOT EXPIRES", "ISSUING EXPIRES", "ROOT ROTATION", "CERTS", "READY", "FAILING", "PENDING", "RENEWING SOON"}
	if o.allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	var lines [][]string
	for _, r := range rows {
		ready := r.Ready
		if r.Reason != "" && r.Ready != string(metav1.ConditionTrue) {
			ready += " (" + r.Reason + ")"
		}
		rotation := r.Rotation
		if rotation == "" {
			rotation = "-"
		}
		line := []string{r.Name, ready, expiry(now, r.RootNotAfter), expiry(now, r.IssuingNotAfter), rotation,
			strconv.Itoa(r.Certificates.Total), strconv.Itoa(r.Certificates.Ready), strconv.Itoa(r.Certificates.Failing),
			strconv.Itoa(r.Certificates.Pending), strconv.Itoa(r.Certificates.RenewingSoon)}
		if o.allNamespaces {
			line = append([]string{r.Namespace}, line...)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		_, err := o.out.Write([]byte("No CertificateAuthorities found.\n"))
		return err
	}
	return table(o.out, header, lines)
}

// rotationSummary says where a root rotation is: its phase, with the Certificates counted in
// the phases that wait for them (Trusting: carrying the bundle; Moving: issued under the new
// root); "" when none runs.
func rotationSummary(r *v1alpha1.RootRotationStatus) string {
	switch {
	case r == nil || r.Phase == "" || r.Phase == v1alpha1.RootRotationCompleted:
		return ""
	case r.Phase == v1alpha1.RootRotationTrusting:
		return fmt.Sprintf("%s %d/%d", r.Phase, r.Trusting, r.Total)
	case r.Phase == v1alpha1.RootRotationMoving:
		return fmt.Sprintf("%s %d/%d", r.Phase, r.Moved, r.Total)
	}
	return string(r.Phase)
}
