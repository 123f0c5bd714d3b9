package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
)

// InstallShippedCRDs installs the CRDs the checkout ships (RepoRoot/deploy/crds), as InstallCRDs.
func (e *Env) InstallShippedCRDs(ctx context.Context) error {
	return e.InstallCRDs(ctx, filepath.Join(e.RepoRoot, "deploy", "crds"))
}

// InstallCRDs creates or updates every CustomResourceDefinition found in the
// *.yaml files of dir (several documents per file are fine; other kinds are
// an error) and waits until each is Established and served by discovery.
func (e *Env) InstallCRDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("testenv: CRD dir: %w", err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		got, err := readCRDs(f)
		if err != nil {
			return fmt.Errorf("testenv: %s: %w", f, err)
		}
		crds = append(crds, got...)
	}
	client, err := apiextensions.NewForConfig(e.RESTConfig)
	if err != nil {
		return err
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		_, err := api.Create(ctx, crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = updateCRD(ctx, client, crd)
		}
		if err != nil {
			return fmt.Errorf("testenv: apply CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := e.waitCRD(ctx, client, crd); err != nil {
			return fmt.Errorf("testenv: CRD %s: %w", crd.Name, err)
		}
	}
	return nil
}

// readCRDs decodes the CRDs in a multi-document YAML file, skipping empty documents.
func readCRDs(path string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var crds []*apiextensionsv1.CustomResourceDefinition
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); errors.Is(err, io.EOF) {
			return crds, nil
		} else if err != nil {
			return nil, err
		}
		if crd.Kind == "" && crd.Name == "" {
			continue // empty document
		}
		if crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("document of kind %q, want CustomResourceDefinition", crd.Kind)
		}
		crds = append(crds, crd)
	}
}

func updateCRD(ctx context.Context, client apiextensions.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for {
		cur, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		upd := crd.DeepCopy()
		upd.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, upd, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}

// waitCRD waits until crd is Established and every served version lists
// its plural in discovery.
func (e *Env) waitCRD(ctx context.Context, client apiextensions.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	disco, err := discovery.NewDiscoveryClientForConfig(e.RESTConfig)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		cur, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !established(cur) {
			return false, nil
		}
		for _, v := range cur.Spec.Versions {
			if !v.Served {
				continue
			}
			list, err := disco.ServerResourcesForGroupVersion(cur.Spec.Group + "/" + v.Name)
			if err != nil {
				return false, nil // not in discovery yet
			}
			if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == cur.Spec.Names.Plural }) {
				return false, nil
			}
		}
		return true, nil
	})
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
