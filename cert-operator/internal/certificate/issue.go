package certificate

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// issuanceError is a failure to issue that retrying unchanged cannot fix (Vault refused the
// request, or answered with a CA other than the one the CertificateAuthority publishes).
type issuanceError struct{ msg string }

func (e *issuanceError) Error() string { return e.msg }

// reissue makes a new certificate for cert because of reason and stores it in its Secret.
func (c *Controller) reissue(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer,
	keySpec pki.KeySpec, in policy.Input, reason, message string) error {
	log = log.WithField("reason", reason)
	if wait := c.backoffRemaining(cert, in.Now); wait > 0 {
		log.WithField("after", wait).Debug("issuance failed recently, waiting before the next attempt")
		return controller.RequeueAfter(wait)
	}
	cert, err := c.announceIssuing(ctx, cert, in, reason, message)
	if cert == nil || err != nil {
		return err
	}

	start := time.Now()
	log.Info("issuing certificate")
	material, leaf, root, err := c.issue(ctx, cert, iss, keySpec)
	if err != nil {
		return c.signFailed(ctx, log, cert, start, err)
	}

	signedAt := renewal.CeilSecond(c.now())
	prov := secret.Provenance{
		SpecHash:        in.SpecHash,
		RootFingerprint: iss.rootFingerprint,
		RenewRequest:    cert.Annotations[v1alpha1.AnnotationRenew],
	}
	err = c.writeSecret(ctx, cert, iss, in.Secret, material, prov)
	if apierrors.IsAlreadyExists(err) {
		// The cache showed no Secret, but there is one: decide again on it as it is. Someone
		// else's is left untouched (and the new certificate, never stored, is dropped).
		var done bool
		if done, err = c.secretExists(ctx, log, cert, iss, material, prov); done {
			c.observeIssuance("failed", start)
			return err
		}
	}
	if err != nil {
		c.observeIssuance("error", start)
		// Vault signed: record it, so the retry waits for the floor instead of signing again
		// at once (a Secret the API server refuses would otherwise cost a signature a retry).
		if _, werr := c.writeStatus(ctx, newStatus(cert, c.now()).issued(signedAt)); werr != nil {
			log.WithError(werr).Debug("cannot record the issuance whose Secret write failed")
		}
		return err
	}
	c.observeIssuance("issued", start)
	if c.rotationBounded(iss, reason) {
		c.metrics.rotationReissues.Inc()
	}

	if old := in.Data.Leaf; old != nil && revokesOnReissue(cert.Spec.RevocationPolicy) &&
		secret.ProvenanceOf(in.Secret).RootFingerprint == iss.rootFingerprint {
		c.revokeReplaced(ctx, log, cert, iss, old)
	}
	return c.issued(ctx, log, cert, iss, leaf, root, signedAt, reason, message)
}

// announceIssuing sets Issuing=True (and Ready=False when the certificate in the Secret no
// longer serves) when a certificate is being replaced or retried, so users see why, and returns
// cert as the API server now has it; nil, with no error, when cert changed meanwhile. A first
// issuance skips that write: it takes milliseconds and ends in one status write that sets Ready
// and Issuing together, which is a third fewer API writes per certificate.
func (c *Controller) announceIssuing(ctx context.Context, cert *v1alpha1.Certificate, in policy.Input, reason, message string) (*v1alpha1.Certificate, error) {
	if cert.Status.NotAfter == nil && cert.Status.FailedIssuanceAttempts == 0 {
		return cert, nil
	}
	b := newStatus(cert, in.Now).issuing(metav1.ConditionTrue, reason, message)
	if !usable(in, reason) {
		b.ready(metav1.ConditionFalse, reason, message)
	}
	updated, err := c.writeStatus(ctx, b)
	return updated, ignoreStale(err)
}

// signFailed handles err, a failure to have cert's certificate signed since start: a refusal
// (Vault's, or an answer that cannot be used) is recorded and backed off by status; anything
// else (Vault unavailable) is returned for the queue's rate limiter.
func (c *Controller) signFailed(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, start time.Time, err error) error {
	var refused *issuanceError
	if msg, ok := vault.Refusal(err); ok {
		refused = &issuanceError{"Vault refused to sign: " + msg}
	} else if !errors.As(err, &refused) {
		c.observeIssuance("error", start)
		c.metrics.syncErrors.WithLabelValues("VaultUnavailable").Inc()
		return err
	}
	c.observeIssuance("failed", start)
	return c.issuanceFailed(ctx, log, cert, refused.msg)
}

// issued reports the new leaf in cert's Secret, issued because of reason, in an event, a log
// line and the status, and schedules its renewal.
func (c *Controller) issued(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer,
	leaf, root *x509.Certificate, signedAt time.Time, reason, message string) error {
	kind := EventIssued
	if reason == policy.ReasonRenewing || reason == policy.ReasonManuallyTriggered {
		kind = EventRenewed
	}
	c.metrics.issuances.WithLabelValues(strings.ToLower(kind)).Inc()
	serial := contract.Serial(leaf.SerialNumber)
	c.recorder.Eventf(cert, corev1.EventTypeNormal, kind, "%s certificate %s, valid until %s (%s)",
		kind, serial, leaf.NotAfter.UTC().Format(time.RFC3339), message)
	log.WithFields(logrus.Fields{"serial": serial, "notAfter": leaf.NotAfter}).Info(strings.ToLower(kind) + " certificate")

	b := newStatus(cert, c.now()).issued(signedAt)
	next := policy.RenewalTime(b.view(), leaf)
	b.current(leaf, next).
		roots(iss.rootFingerprint, iss.trustedRoots(root)).
		ready(metav1.ConditionTrue, ReasonIssued, readyMessage(leaf)).
		issuing(metav1.ConditionFalse, ReasonUpToDate, "The certificate in the Secret is current")
	c.queue.EnqueueAfter(cache.MetaObjectToName(cert), nextLook(next, leaf).Sub(c.now()))
	if _, err := c.writeStatus(ctx, b); err != nil {
		return ignoreStale(err)
	}
	return nil
}

// observeIssuance records an issuance that began at start and ended in result (issued: the
// Secret holds the new certificate; failed: refused or dropped; error: to be retried).
func (c *Controller) observeIssuance(result string, start time.Time) {
	c.metrics.issuanceDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

// secretExists handles a create of cert's Secret that found one already there: it decides
// again on the live Secret and reports done when the sync ends there — a Secret that is not
// ours blocks the Certificate, a current one of ours is kept — and otherwise writes material
// into the live Secret, which is ours.
func (c *Controller) secretExists(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer,
	material secret.Material, prov secret.Provenance) (bool, error) {
	in, err := c.liveInput(ctx, cert, iss, c.now())
	if err != nil {
		return true, err
	}
	reason, message, triggered := policy.Default.Evaluate(in)
	switch {
	case in.Secret == nil:
		return true, fmt.Errorf("secret %s/%s: created by someone else and deleted again", cert.Namespace, cert.Spec.SecretName)
	case reason == policy.ReasonSecretConflict:
		log.Info("the secret exists and is not ours; the new certificate is dropped")
		if err := c.block(ctx, cert, blocked{reason, message}); err != nil {
			return true, err
		}
		return true, controller.RequeueAfter(conflictRecheck)
	case !triggered:
		return true, c.keepCurrent(ctx, log, cert, iss, in)
	}
	return false, c.writeSecret(ctx, cert, iss, in.Secret, material, prov)
}

// usable reports whether the certificate already in the Secret still serves while a new one is
// issued for reason, so Ready can stay as it is.
func usable(in policy.Input, reason string) bool {
	switch reason {
	case policy.ReasonSpecChanged, policy.ReasonManuallyTriggered, policy.ReasonRootChanged, policy.ReasonRenewing:
		return in.Data.Leaf != nil && in.Now.Before(in.Data.Leaf.NotAfter)
	}
	return false
}

// issuanceFailed records a refused issuance on cert, whose status then decides the backoff
// (backoffRemaining), and asks for a retry once it has passed.
func (c *Controller) issuanceFailed(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, msg string) error {
	log.WithField("attempts", cert.Status.FailedIssuanceAttempts+1).Warn("issuance failed: " + msg)
	c.recorder.Event(cert, corev1.EventTypeWarning, ReasonIssuanceFailed, msg)
	c.metrics.syncErrors.WithLabelValues(ReasonIssuanceFailed).Inc()
	b := newStatus(cert, c.now()).failed().
		ready(metav1.ConditionFalse, ReasonIssuanceFailed, msg).
		issuing(metav1.ConditionFalse, ReasonIssuanceFailed, msg)
	written, err := c.writeStatus(ctx, b)
	if errors.Is(err, errStale) {
		// The status does not record this failure: the queue's rate limiter spaces the retry.
		return fmt.Errorf("record the failed issuance: %w", err)
	}
	if err != nil {
		return err
	}
	if err := c.awaitCache(ctx, written); err != nil {
		return err
	}
	return controller.RequeueAfter(failureBackoff(written.Status.FailedIssuanceAttempts, c.maxBackoff))
}

// issue makes a key and has Vault sign a CSR for it with iss's role, returning what the Secret
// holds, the new leaf and the root it was issued under.
func (c *Controller) issue(ctx context.Context, cert *v1alpha1.Certificate, iss issuer, keySpec pki.KeySpec) (secret.Material, *x509.Certificate, *x509.Certificate, error) {
	spec := cert.Spec
	key, err := pki.GenerateKey(keySpec)
	if err != nil {
		return secret.Material{}, nil, nil, fmt.Errorf("generate %s key: %w", keySpec, err)
	}
	csr, err := pki.CreateCSR(pki.Subject{CommonName: spec.CommonName, DNSNames: spec.AltNames, IPs: spec.IPSANs, URIs: spec.URISANs}, key)
	if err != nil {
		return secret.Material{}, nil, nil, &issuanceError{err.Error()}
	}
	req := map[string]any{"csr": string(csr), "format": "pem"}
	if spec.TTL != "" {
		ttl, err := time.ParseDuration(spec.TTL)
		if err != nil {
			return secret.Material{}, nil, nil, &issuanceError{fmt.Sprintf("ttl %q is not a duration: %v", spec.TTL, err)}
		}
		req["ttl"] = strconv.FormatInt(int64(ttl/time.Second), 10) + "s"
	}
	if spec.CommonName != "" {
		req["common_name"] = spec.CommonName
	}
	if len(spec.AltNames) > 0 {
		req["alt_names"] = strings.Join(spec.AltNames, ",")
	}
	if len(spec.IPSANs) > 0 {
		req["ip_sans"] = strings.Join(spec.IPSANs, ",")
	}
	if len(spec.URISANs) > 0 {
		req["uri_sans"] = strings.Join(spec.URISANs, ",")
	}

	signPath := iss.mounts.SignPath(iss.role.Name)
	resp, err := c.vault.Write(ctx, "sign", signPath, req)
	if err != nil {
		return secret.Material{}, nil, nil, fmt.Errorf("sign with %s: %w", signPath, err)
	}
	leaf, intermediates, root, err := parseSignResponse(resp.Data, iss.rootFingerprint)
	if err != nil {
		return secret.Material{}, nil, nil, &issuanceError{fmt.Sprintf("Vault's answer from %s: %v", signPath, err)}
	}
	if fp := contract.Fingerprint(root); fp != iss.rootFingerprint {
		return secret.Material{}, nil, nil, &issuanceError{fmt.Sprintf(
			"Vault signed with a chain whose root (SHA-256 %s) is not the root CertificateAuthority %q publishes (SHA-256 %s)",
			fp, iss.ca.Name, iss.rootFingerprint)}
	}
	if !pki.PublicKeysEqual(leaf.PublicKey, key.Public()) {
		return secret.Material{}, nil, nil, &issuanceError{"Vault returned a certificate for a different key than the CSR's"}
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		return secret.Material{}, nil, nil, err
	}
	return secret.Material{
		Certificate: contract.EncodeCertificates(append([]*x509.Certificate{leaf}, intermediates...)...),
		PrivateKey:  keyPEM,
		CA:          iss.trustPEM(root),
	}, leaf, root, nil
}

// parseSignResponse reads the leaf and its chain from the data of a Vault sign response. The
// ca_chain runs from the issuing CA to the roots; during a root rotation it also holds the new
// root's certificate cross-signed by the old root, and both roots: [issuing, cross, new root,
// old root]. The root is the self-signed element whose fingerprint is rootFingerprint (the
// CA's status.root), or the first self-signed one when none is (the caller refuses it); the
// intermediates are every element that is not self-signed, in order, so that a leaf carries
// the cross-signed certificate and a client that trusts only the old root accepts it.
func parseSignResponse(data map[string]any, rootFingerprint string) (leaf *x509.Certificate, intermediates []*x509.Certificate, root *x509.Certificate, err error) {
	leafPEM, _ := data["certificate"].(string)
	if leafPEM == "" {
		return nil, nil, nil, errors.New("no certificate in the response")
	}
	certs, err := contract.ParseCertificates([]byte(leafPEM))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("certificate: %w", err)
	}
	leaf = certs[0]

	var chainPEM []byte
	switch chain := data["ca_chain"].(type) {
	case []any:
		for _, c := range chain {
			if s, ok := c.(string); ok {
				chainPEM = append(chainPEM, s...)
				chainPEM = append(chainPEM, '\n')
			}
		}
	case []string:
		chainPEM = []byte(strings.Join(chain, "\n"))
	}
	if len(chainPEM) == 0 {
		if issuing, _ := data["issuing_ca"].(string); issuing != "" {
			chainPEM = []byte(issuing)
		}
	}
	if len(chainPEM) == 0 {
		return nil, nil, nil, errors.New("no CA chain in the response")
	}
	chain, err := contract.ParseCertificates(chainPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("ca_chain: %w", err)
	}
	intermediates, roots := contract.ChainRoots(chain)
	if len(roots) == 0 {
		return nil, nil, nil, errors.New("ca_chain holds no self-signed root")
	}
	root = roots[0]
	for _, r := range roots {
		if contract.Fingerprint(r) == rootFingerprint {
			root = r
			break
		}
	}
	return leaf, intermediates, root, nil
}

// writeSecret stores material in cert's Secret: it creates the Secret when existing is nil and
// otherwise replaces the key pair in existing, which is ours and must be the live Secret (read
// from the API server, never the cache, whose copies keep no data).
func (c *Controller) writeSecret(ctx context.Context, cert *v1alpha1.Certificate, iss issuer, existing *corev1.Secret,
	material secret.Material, prov secret.Provenance) error {
	secrets := c.kube.CoreV1().Secrets(cert.Namespace)
	if existing == nil {
		s := secret.Build(cert, iss.ca.Spec.ClusterID, material, prov)
		c.metrics.apiWrites.WithLabelValues("secrets", "create").Inc()
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	}
	s := existing.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[corev1.TLSCertKey] = material.Certificate
	s.Data[corev1.TLSPrivateKeyKey] = material.PrivateKey
	s.Data[contract.TrustKey] = material.CA
	secret.ApplyMetadata(s, cert, iss.ca.Spec.ClusterID, prov)
	c.metrics.apiWrites.WithLabelValues("secrets", "update").Inc()
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}
