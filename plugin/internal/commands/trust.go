package commands

import (
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// trustEntry describes one certificate of a published bundle, for -o json|yaml.
type trustEntry struct {
	Subject     string `json:"subject"`
	Fingerprint string `json:"fingerprintSHA256"`
	NotAfter    string `json:"notAfter"`
}

// trustBundle is the published bundle with its certificates decoded.
type trustBundle struct {
	Namespace    string       `json:"namespace"`
	ConfigMap    string       `json:"configMap"`
	PEM          string       `json:"pem"`
	Certificates []trustEntry `json:"certificates"`
}

func newTrust(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "trust CA",
		Short: "Print the trust bundle a CertificateAuthority publishes (PEM, for piping into a file)",
		Example: `  kubectl clusterpki trust tenant-a -n tenant-a > tenant-a-ca.crt
  kubectl clusterpki trust tenant-a -n tenant-a -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := trustConfigMap(args[0])
			cm, err := o.pki.ClusterpkiV1alpha1().CertificateAuthorities(o.namespace).Get(cmd.Context(), args[0], metav1.GetOptions{})
			if err != nil {
				return err
			}
			bundle, err := o.kube.CoreV1().ConfigMaps(cm.Namespace).Get(cmd.Context(), name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("the trust of CertificateAuthority %s/%s: %w", cm.Namespace, cm.Name, err)
			}
			pem := bundle.Data[trustKey]
			certs, err := contract.ParseCertificates([]byte(pem))
			if err != nil {
				return fmt.Errorf("ConfigMap %s/%s %s: %w", cm.Namespace, name, trustKey, err)
			}
			if o.output == "table" || o.output == "" {
				_, err := fmt.Fprint(o.out, pem)
				return err
			}
			out := trustBundle{Namespace: cm.Namespace, ConfigMap: name, PEM: pem}
			for _, c := range certs {
				out.Certificates = append(out.Certificates, trustEntry{Subject: c.Subject.String(), Fingerprint: contract.Fingerprint(c), NotAfter: c.NotAfter.UTC().Format("2006-01-02T15:04:05Z")})
			}
			_, err = o.printStructured(out)
			return err
		},
	}
}
