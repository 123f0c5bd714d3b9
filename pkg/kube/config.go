package kube

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the config for reaching the API server with client-side rate limits qps
// and burst (a negative qps: none, as client-go reads it): from the kubeconfig file when one is given or KUBECONFIG is set, otherwise from
// the pod's in-cluster ServiceAccount.
func RESTConfig(kubeconfig string, qps float32, burst int) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig == "" && os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("load in-cluster config (pass --kubeconfig when running outside a cluster): %w", err)
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = kubeconfig
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig: %w", err)
		}
	}
	cfg.QPS = qps
	cfg.Burst = burst
	return cfg, nil
}

// Protobuf returns a copy of cfg that talks protobuf, for clients of Kubernetes' built-in
// types (Secrets, ConfigMaps, Events, Leases): the API server encodes and decodes it several
// times faster than JSON, and so does the client. Custom resources have no protobuf encoding;
// their clients keep cfg as it is.
func Protobuf(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg
}
