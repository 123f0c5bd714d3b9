package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// requestPatch is the merge patch that sets annotation to a fresh timestamp; the operators act
// when its value changes.
func requestPatch(annotation string, now time.Time) []byte {
	p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		annotation: now.UTC().Format(time.RFC3339Nano),
	}}})
	return p
}

// requested is the result of renew, rotate-issuer and rotate-root, one per object.
type requested struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Annotation string `json:"annotation"`
	Value      string `json:"value"`
}

func newRenew(o *options) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "renew (NAME... | --all)",
		Short: "Ask the cert-operator to re-issue Certificates now (sets " + v1alpha1.AnnotationRenew + ")",
		Example: `  kubectl clusterpki renew kube-apiserver -n tenant-a
  kubectl clusterpki renew --all -n tenant-a`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("name Certificates or give --all, not both")
			}
			ctx := cmd.Context()
			if all {
				list, err := o.pki.ClusterpkiV1alpha1().Certificates(o.namespace).List(ctx, metav1.ListOptions{})
				if err != nil {
					return err
				}
				for _, c := range list.Items {
					args = append(args, c.Name)
				}
				if len(args) == 0 {
					return fmt.Errorf("no Certificates in namespace %s", o.namespace)
				}
			}
			return o.request(ctx, "Certificate", v1alpha1.AnnotationRenew, args, func(ctx context.Context, name string, patch []byte) error {
				_, err := o.pki.ClusterpkiV1alpha1().Certificates(o.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "Every Certificate in the namespace.")
	return cmd
}

func newRotateIssuer(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "rotate-issuer CA",
		Short:   "Ask the ca-operator to replace a CertificateAuthority's issuing CA now (sets " + v1alpha1.AnnotationRotateIssuer + ")",
		Example: "  kubectl clusterpki rotate-issuer tenant-a -n tenant-a",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.request(cmd.Context(), "CertificateAuthority", v1alpha1.AnnotationRotateIssuer, args, func(ctx context.Context, name string, patch []byte) error {
				_, err := o.pki.ClusterpkiV1alpha1().CertificateAuthorities(o.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			})
		},
	}
}

func newRotateRoot(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-root CA",
		Short: "Ask the ca-operator to replace a CertificateAuthority's root, in phases, without an outage (sets " + v1alpha1.AnnotationRotateRoot + ")",
		Long: `Ask the ca-operator to replace a CertificateAuthority's root (sets ` + v1alpha1.AnnotationRotateRoot + `).

The rotation runs in phases, shown by "kubectl get pkica" (ROTATION) and "kubectl clusterpki
status": Preparing (the new root is made in Vault and cross-signed by the old one), Trusting
(every Secret's ca.crt gains the new root), Moving (every Certificate is re-issued under the new
root, spaced by the cert-operator's --rotation-reissue-interval), Overlap (both roots stay
trusted for spec.root.rotationOverlap), Retiring (the old root leaves the trust and Vault), then
Completed. A request made while a rotation runs waits for it to complete.`,
		Example: "  kubectl clusterpki rotate-root tenant-a -n tenant-a",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.request(cmd.Context(), "CertificateAuthority", v1alpha1.AnnotationRotateRoot, args, func(ctx context.Context, name string, patch []byte) error {
				_, err := o.pki.ClusterpkiV1alpha1().CertificateAuthorities(o.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			})
		},
	}
}

// request sets annotation on every named object with patch and reports each.
func (o *options) request(ctx context.Context, kind, annotation string, names []string, patch func(context.Context, string, []byte) error) error {
	now := o.now()
	var done []requested
	var errs []error
	for _, n := range names {
		if err := patch(ctx, n, requestPatch(annotation, now)); err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", kind, o.namespace, n, err))
			continue
		}
		done = append(done, requested{Kind: kind, Namespace: o.namespace, Name: n, Annotation: annotation, Value: now.UTC().Format(time.RFC3339Nano)})
	}
	if printed, err := o.printStructured(done); printed {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range done {
		fmt.Fprintf(o.out, "%s %s/%s: requested (%s=%s)\n", r.Kind, r.Namespace, r.Name, r.Annotation, r.Value)
	}
	return errors.Join(errs...)
}
