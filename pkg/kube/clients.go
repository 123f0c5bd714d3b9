package kube

import (
	"errors"
	"fmt"

	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// CoreClient is the part of a Kubernetes clientset that reads and writes Secrets and Events;
// kubernetes.Interface (and its fake) satisfy it.
type CoreClient interface {
	CoreV1() corev1.CoreV1Interface
}

// Client is the part of a Kubernetes clientset the operators' start-up needs: core/v1 for
// Secrets and Events and coordination/v1 for the leader Lease. It exists so that a binary
// need not link and initialise the umbrella k8s.io/client-go/kubernetes Clientset, which
// builds a client for every API group.
type Client interface {
	CoreClient
	CoordinationV1() coordinationv1.CoordinationV1Interface
}

type client struct {
	core         corev1.CoreV1Interface
	coordination coordinationv1.CoordinationV1Interface
}

func (c *client) CoreV1() corev1.CoreV1Interface                         { return c.core }
func (c *client) CoordinationV1() coordinationv1.CoordinationV1Interface { return c.coordination }

// NewClient returns a Client for cfg, talking protobuf (see Protobuf). The two group clients
// share one HTTP client and one rate limiter, as the groups of a Clientset do.
func NewClient(cfg *rest.Config) (Client, error) {
	cfg = Protobuf(cfg)
	// As kubernetes.NewForConfig does: the groups share one client-side rate limiter.
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, errors.New("burst must be greater than 0 when QPS is set and RateLimiter is not")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes HTTP client: %w", err)
	}
	core, err := corev1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("create core/v1 client: %w", err)
	}
	coordination, err := coordinationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("create coordination/v1 client: %w", err)
	}
	return &client{core: core, coordination: coordination}, nil
}
