package contract

import (
	"crypto/x509"
	"math/big"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSerial(t *testing.T) {
	tests := map[string]struct {
		serial *big.Int
		want   string
	}{
		"zero is one byte":              {serial: big.NewInt(0), want: "00"},
		"a small number is zero-padded": {serial: big.NewInt(10), want: "0a"},
		"bytes are joined by colons":    {serial: big.NewInt(0x1234ab), want: "12:34:ab"},
		"a leading zero nibble is kept": {serial: big.NewInt(0x0102), want: "01:02"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Serial(tc.serial); got != tc.want {
				t.Errorf("Serial(%v) = %q, want %q", tc.serial, got, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	// The SHA-256 of empty input, for a certificate whose DER is empty.
	if got, want := Fingerprint(&x509.Certificate{}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("Fingerprint = %q, want %q", got, want)
	}
}

func TestReadyCAStatus(t *testing.T) {
	root := &x509.Certificate{Raw: []byte("root"), SerialNumber: big.NewInt(0x0a)}
	st := ReadyCA{RootMount: "clusterpki/ns/c1/root", IssuingMount: "clusterpki/ns/c1/issuing", Root: root,
		Roles: []string{"server"}}.Status("ca", 3, metav1.Now())
	if st.ObservedGeneration != 3 || len(st.Conditions) != 1 || st.Conditions[0].Reason != ReasonProvisioned ||
		st.Conditions[0].ObservedGeneration != 3 {
		t.Errorf("Ready condition: %+v", st)
	}
	if st.ConfigMapName != "ca-ca" || st.Root.SerialNumber != "0a" || st.Issuing != nil {
		t.Errorf("status: %+v", st)
	}
	if len(st.Roles) != 1 || st.Roles[0].SignPath != "clusterpki/ns/c1/issuing/sign/server" ||
		st.Roles[0].RevokePath != "clusterpki/ns/c1/issuing/revoke" {
		t.Errorf("roles: %+v", st.Roles)
	}
}

func TestParseCertificates(t *testing.T) {
	if _, err := ParseCertificates([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")); err == nil {
		t.Error("data with no certificate parsed")
	}
	if _, err := ParseCertificate([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
		t.Error("a block that is no certificate parsed")
	}
}
