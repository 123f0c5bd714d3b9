package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// fakeVault is an in-memory Vault behind VaultClient with just enough of sys/mounts and the PKI
// engine for the controller's calls: mounts with descriptions, issuers, keys, roles and
// configuration. Its certificates are real (crypto/x509), its errors the ones pkg/vault's
// client returns, and its keys always ECDSA P-256, whatever the key type asked for.
type fakeVault struct {
	mu     sync.Mutex
	mounts map[string]*fakeMount
	// down makes every call fail as a Vault that cannot be reached does.
	down bool
	// calls records every call as "<method> <op> <path>".
	calls  []string
	serial int64
}

// fakeMount is one mount and, when it is a pki mount, what is in it.
type fakeMount struct {
	typ, description string
	maxLeaseTTL      int64 // seconds
	issuers          map[string]*fakeIssuer
	keys             map[string]crypto.Signer
	defaultIssuer    string
	defaultKey       string
	config           map[string]map[string]any // by endpoint: "urls", "crl", "auto-tidy"
	roles            map[string]map[string]any
}

// fakeIssuer is an issuer of a mount.
type fakeIssuer struct {
	id, name, keyID, usage string
	cert                   *x509.Certificate
}

func newFakeVault() *fakeVault { return &fakeVault{mounts: map[string]*fakeMount{}} }

// Read serves sys/mounts/<path>, config/issuers, config/<endpoint>, issuer/<id>/json and
// roles/<name>.
func (v *fakeVault) Read(_ context.Context, op, path string) (*vaultapi.Secret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.record("read", op, path); err != nil {
		return nil, err
	}
	if p, ok := strings.CutPrefix(path, "sys/mounts/"); ok {
		m := v.mounts[p]
		if m == nil {
			return nil, responseError(400, "No secret engine mount at "+p+"/")
		}
		return secret(map[string]any{"type": m.typ, "description": m.description,
			"config": map[string]any{"max_lease_ttl": json.Number(fmt.Sprint(m.maxLeaseTTL))}}), nil
	}
	m, rest, err := v.mountOf(path)
	if err != nil {
		return nil, err
	}
	switch {
	case rest == "config/issuers":
		return secret(map[string]any{"default": m.defaultIssuer, "default_follows_latest_issuer": false}), nil
	case rest == "config/keys":
		return secret(map[string]any{"default": m.defaultKey}), nil
	case strings.HasPrefix(rest, "config/"):
		return secret(vaultJSON(m.config[strings.TrimPrefix(rest, "config/")])), nil
	case strings.HasPrefix(rest, "issuer/"):
		// issuer/<ref>/json (unauthenticated: no key or usage) or issuer/<ref>; Vault answers
		// an unknown reference with a 500.
		ref, json := strings.CutSuffix(strings.TrimPrefix(rest, "issuer/"), "/json")
		iss := m.issuerByRef(ref)
		if iss == nil {
			return nil, responseError(500, "unable to find PKI issuer for reference: "+ref)
		}
		data := map[string]any{"issuer_id": iss.id, "issuer_name": iss.name, "certificate": string(contract.EncodeCertificates(iss.cert))}
		if !json {
			data["key_id"], data["usage"] = iss.keyID, iss.usage
		}
		return secret(data), nil
	case strings.HasPrefix(rest, "roles/"):
		if role, ok := m.roles[strings.TrimPrefix(rest, "roles/")]; ok {
			return secret(vaultJSON(role)), nil
		}
	}
	return nil, fmt.Errorf("vault read %s: %w", path, vault.ErrNotFound)
}

// List serves issuers and roles.
func (v *fakeVault) List(_ context.Context, op, path string) ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.record("list", op, path); err != nil {
		return nil, err
	}
	m, rest, err := v.mountOf(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	switch rest {
	case "issuers":
		for id := range m.issuers {
			keys = append(keys, id)
		}
	case "roles":
		for name := range m.roles {
			keys = append(keys, name)
		}
	case "keys":
		for id := range m.keys {
			keys = append(keys, id)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Write serves mounting and tuning, generating and signing CAs, importing a signed issuing CA,
// naming issuers, the default issuer, configuration and roles.
func (v *fakeVault) Write(_ context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.record("write", op, path); err != nil {
		return nil, err
	}
	if p, ok := strings.CutPrefix(path, "sys/mounts/"); ok {
		return nil, v.mount(p, data)
	}
	m, rest, err := v.mountOf(path)
	if err != nil {
		return nil, err
	}
	switch {
	case rest == "root/generate/internal", rest == "root/rotate/internal":
		return v.generateRoot(m, data)
	case rest == "intermediate/cross-sign":
		return v.crossSignCSR(m, data)
	case rest == "issuers/import/cert":
		return v.importCerts(m, data["pem_bundle"])
	case rest == "intermediate/generate/internal":
		return v.generateCSR(m, data)
	case rest == "root/sign-intermediate":
		return v.signIntermediate(m, data)
	case rest == "intermediate/set-signed":
		return v.importCerts(m, data["certificate"])
	case rest == "config/keys":
		m.defaultKey, _ = data["default"].(string)
	case rest == "config/issuers":
		m.defaultIssuer, _ = data["default"].(string)
	case strings.HasPrefix(rest, "config/"):
		m.config[strings.TrimPrefix(rest, "config/")] = vaultJSON(data)
	case strings.HasPrefix(rest, "issuer/"):
		iss := m.issuerByRef(strings.TrimPrefix(rest, "issuer/"))
		if iss == nil {
			return nil, responseError(500, "unable to find PKI issuer for reference: "+rest)
		}
		name, _ := data["issuer_name"].(string)
		if other := m.issuerByRef(name); name != "" && other != nil && other != iss {
			return nil, responseError(400, "issuer name already in use")
		}
		iss.name = name
		if usage, ok := data["usage"].(string); ok {
			iss.usage = usage
		}
	case strings.HasPrefix(rest, "roles/"):
		m.roles[strings.TrimPrefix(rest, "roles/")] = vaultJSON(data)
	default:
		return nil, responseError(404, "unsupported path: "+path)
	}
	return nil, nil
}

// WriteIdempotent is Write.
func (v *fakeVault) WriteIdempotent(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	return v.Write(ctx, op, path, data)
}

// Delete serves unmounting and deleting issuers and roles.
func (v *fakeVault) Delete(_ context.Context, op, path string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.record("delete", op, path); err != nil {
		return err
	}
	if p, ok := strings.CutPrefix(path, "sys/mounts/"); ok {
		delete(v.mounts, p)
		return nil
	}
	m, rest, err := v.mountOf(path)
	if err != nil {
		return err
	}
	if id, ok := strings.CutPrefix(rest, "issuer/"); ok {
		delete(m.issuers, id)
		if m.defaultIssuer == id {
			m.defaultIssuer = "" // Vault only warns
		}
	} else if id, ok := strings.CutPrefix(rest, "key/"); ok {
		for _, iss := range m.issuers {
			if iss.keyID == id {
				return responseError(400, "Failed to Delete Key.  Key in Use by Issuer: "+iss.id)
			}
		}
		delete(m.keys, id)
	} else if name, ok := strings.CutPrefix(rest, "roles/"); ok {
		delete(m.roles, name)
	}
	return nil
}

// record notes a call, and fails it as an unreachable Vault does when v is down.
func (v *fakeVault) record(method, op, path string) error {
	v.calls = append(v.calls, method+" "+op+" "+path)
	if !v.down {
		return nil
	}
	refused := &url.Error{Op: "Get", URL: "https://vault.example:8200/v1/" + path,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	return fmt.Errorf("vault %s %s: %w", method, path, refused)
}

// mountOf returns the mount that path lies in and the rest of the path below it.
func (v *fakeVault) mountOf(path string) (*fakeMount, string, error) {
	for p, m := range v.mounts {
		if rest, ok := strings.CutPrefix(path, p+"/"); ok {
			return m, rest, nil
		}
	}
	return nil, "", responseError(404, fmt.Sprintf("no handler for route %q. route entry not found.", path))
}

// mount enables (sys/mounts/<path>) or tunes (sys/mounts/<path>/tune) a mount.
func (v *fakeVault) mount(path string, data map[string]any) error {
	if p, ok := strings.CutSuffix(path, "/tune"); ok {
		m := v.mounts[p]
		if m == nil {
			return responseError(400, "no mount at "+p)
		}
		m.description, _ = data["description"].(string)
		m.maxLeaseTTL = parseSeconds(data["max_lease_ttl"])
		return nil
	}
	if v.mounts[path] != nil {
		return responseError(400, "path is already in use at "+path+"/")
	}
	cfg, _ := data["config"].(map[string]any)
	typ, _ := data["type"].(string)
	description, _ := data["description"].(string)
	v.mounts[path] = newFakeMount(typ, description, parseSeconds(cfg["max_lease_ttl"]))
	return nil
}

// newFakeMount returns an empty mount.
func newFakeMount(typ, description string, maxLeaseTTL int64) *fakeMount {
	return &fakeMount{typ: typ, description: description, maxLeaseTTL: maxLeaseTTL,
		issuers: map[string]*fakeIssuer{}, keys: map[string]crypto.Signer{},
		config: map[string]map[string]any{}, roles: map[string]map[string]any{}}
}

// generateRoot makes a self-signed root with a new key and adds it as an issuer; a name in use
// is refused, atomically, as Vault does.
func (v *fakeVault) generateRoot(m *fakeMount, data map[string]any) (*vaultapi.Secret, error) {
	if name, _ := data["issuer_name"].(string); name != "" && m.issuerByRef(name) != nil {
		return nil, responseError(400, "issuer name already in use")
	}
	key, keyID := v.newKey(m)
	cn, _ := data["common_name"].(string)
	tmpl := v.caTemplate(cn, time.Duration(parseSeconds(data["ttl"]))*time.Second)
	cert, err := createCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	name, _ := data["issuer_name"].(string)
	iss := v.addIssuer(m, cert, keyID, name)
	return secret(map[string]any{"issuer_id": iss.id, "issuer_name": iss.name, "key_id": keyID,
		"certificate": string(contract.EncodeCertificates(cert)), "serial_number": contract.Serial(cert.SerialNumber)}), nil
}

// generateCSR makes a key in the mount and returns a CSR for it.
func (v *fakeVault) generateCSR(m *fakeMount, data map[string]any) (*vaultapi.Secret, error) {
	key, keyID := v.newKey(m)
	cn, _ := data["common_name"].(string)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, err
	}
	return secret(map[string]any{"key_id": keyID,
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}), nil
}

// crossSignCSR returns a CSR for the existing key key_ref.
func (v *fakeVault) crossSignCSR(m *fakeMount, data map[string]any) (*vaultapi.Secret, error) {
	keyID, _ := data["key_ref"].(string)
	key := m.keys[keyID]
	if key == nil {
		return nil, responseError(400, "unable to find key "+keyID)
	}
	cn, _ := data["common_name"].(string)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, err
	}
	return secret(map[string]any{"key_id": keyID,
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}), nil
}

// issuerByRef returns the issuer an ID or a name refers to.
func (m *fakeMount) issuerByRef(ref string) *fakeIssuer {
	if iss := m.issuers[ref]; iss != nil {
		return iss
	}
	for _, iss := range m.issuers {
		if iss.name != "" && iss.name == ref {
			return iss
		}
	}
	return nil
}

// chainOf returns the CA chain Vault builds for parent: parent, then every certificate of the
// mount carrying parent's key signed by another issuer (a cross), then that issuer.
func (m *fakeMount) chainOf(parent *fakeIssuer) []any {
	chain := []any{string(contract.EncodeCertificates(parent.cert))}
	for _, iss := range m.issuers {
		if iss == parent || !bytes.Equal(iss.cert.RawSubjectPublicKeyInfo, parent.cert.RawSubjectPublicKeyInfo) {
			continue
		}
		chain = append(chain, string(contract.EncodeCertificates(iss.cert)))
		for _, signer := range m.issuers {
			if signer != iss && contract.IsSelfSigned(signer.cert) && iss.cert.CheckSignatureFrom(signer.cert) == nil {
				chain = append(chain, string(contract.EncodeCertificates(signer.cert)))
			}
		}
	}
	return chain
}

// signIntermediate signs a CSR as a CA with the mount's default issuer.
func (v *fakeVault) signIntermediate(m *fakeMount, data map[string]any) (*vaultapi.Secret, error) {
	parent := m.issuers[m.defaultIssuer]
	if parent == nil {
		return nil, responseError(400, "no default issuer currently configured")
	}
	csrPEM, _ := data["csr"].(string)
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		return nil, responseError(400, "no CSR")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, responseError(400, err.Error())
	}
	cn, _ := data["common_name"].(string)
	if useCSR, _ := data["use_csr_values"].(bool); useCSR {
		cn = csr.Subject.CommonName
	}
	cert, err := createCertificate(v.caTemplate(cn, time.Duration(parseSeconds(data["ttl"]))*time.Second), parent.cert, csr.PublicKey, m.keys[parent.keyID])
	if err != nil {
		return nil, err
	}
	certPEM := string(contract.EncodeCertificates(cert))
	return secret(map[string]any{"certificate": certPEM, "issuing_ca": string(contract.EncodeCertificates(parent.cert)),
		"ca_chain": append([]any{certPEM}, m.chainOf(parent)...)}), nil
}

// importCerts imports the certificates of a bundle as issuers (set-signed, issuers/import/cert),
// each with the mount's key that matches it (if any), and answers with the mapping of issuer to
// key and which were there already.
func (v *fakeVault) importCerts(m *fakeMount, pemBundle any) (*vaultapi.Secret, error) {
	bundle, _ := pemBundle.(string)
	certs, err := contract.ParseCertificates([]byte(bundle))
	if err != nil {
		return nil, responseError(400, err.Error())
	}
	mapping := map[string]any{}
	var imported, existing []any
	for _, cert := range certs {
		if iss := m.issuerOf(cert); iss != nil {
			mapping[iss.id] = iss.keyID
			existing = append(existing, iss.id)
			continue
		}
		iss := v.addIssuer(m, cert, m.keyOf(cert), "")
		mapping[iss.id] = iss.keyID
		imported = append(imported, iss.id)
	}
	return secret(map[string]any{"imported_issuers": imported, "existing_issuers": existing, "mapping": mapping}), nil
}

// newKey adds a new key to the mount.
func (v *fakeVault) newKey(m *fakeMount) (crypto.Signer, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // only when the system has no randomness
	}
	v.serial++
	id := fmt.Sprintf("key-%d", v.serial)
	m.keys[id] = key
	return key, id
}

// addIssuer adds an issuer to the mount; the first becomes its default, as in Vault.
func (v *fakeVault) addIssuer(m *fakeMount, cert *x509.Certificate, keyID, name string) *fakeIssuer {
	v.serial++
	iss := &fakeIssuer{id: fmt.Sprintf("issuer-%d", v.serial), name: name, keyID: keyID, cert: cert,
		usage: "crl-signing,issuing-certificates,ocsp-signing,read-only"}
	m.issuers[iss.id] = iss
	if m.defaultIssuer == "" {
		m.defaultIssuer = iss.id
	}
	if m.defaultKey == "" {
		m.defaultKey = keyID
	}
	return iss
}

// caTemplate returns a CA certificate template backdated by 30 seconds, as Vault does.
func (v *fakeVault) caTemplate(cn string, ttl time.Duration) *x509.Certificate {
	v.serial++
	now := time.Now()
	return &x509.Certificate{SerialNumber: big.NewInt(v.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-30 * time.Second), NotAfter: now.Add(ttl), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

// issuerOf returns the issuer of the mount whose certificate is cert.
func (m *fakeMount) issuerOf(cert *x509.Certificate) *fakeIssuer {
	for _, iss := range m.issuers {
		if bytes.Equal(iss.cert.Raw, cert.Raw) {
			return iss
		}
	}
	return nil
}

// keyOf returns the ID of the mount's key whose public half cert carries, or "".
func (m *fakeMount) keyOf(cert *x509.Certificate) string {
	for id, key := range m.keys {
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(cert.PublicKey) {
			return id
		}
	}
	return ""
}

// createCertificate signs tmpl for pub with parent's key and parses the result.
func createCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// parseSeconds reads Vault's "<n>s" durations.
func parseSeconds(v any) int64 {
	s, _ := v.(string)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return int64(d / time.Second)
}

// vaultJSON returns data as Vault's API hands it back: lists as []any, numbers as json.Number.
func vaultJSON(data map[string]any) map[string]any {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err) // only for values a test wrote that JSON cannot hold
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	out := map[string]any{}
	if err := dec.Decode(&out); err != nil {
		panic(err)
	}
	return out
}

// secret wraps data as Vault's answer.
func secret(data map[string]any) *vaultapi.Secret { return &vaultapi.Secret{Data: data} }

// responseError is Vault answering with status and message.
func responseError(status int, msg string) error {
	return &vaultapi.ResponseError{StatusCode: status, Errors: []string{msg}}
}

// writes returns the calls that changed something in Vault.
func (v *fakeVault) writes() []string { return v.callsOf("write", "delete") }

// reads returns the calls that only looked.
func (v *fakeVault) reads() []string { return v.callsOf("read", "list") }

// callsOf returns the recorded calls of the given methods.
func (v *fakeVault) callsOf(methods ...string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, c := range v.calls {
		method, _, _ := strings.Cut(c, " ")
		if slices.Contains(methods, method) {
			out = append(out, c)
		}
	}
	return out
}

// forget clears the recorded calls.
func (v *fakeVault) forget() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = nil
}

// setDown makes Vault unreachable (true) or reachable again.
func (v *fakeVault) setDown(down bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.down = down
}
