// Package kube holds the small Kubernetes helpers both operators share: finalizers by merge
// patch, an event recorder, and building a REST config.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PatchFunc sends a JSON merge patch for one object, e.g.
//
//	func(ctx context.Context, data []byte) error {
//		_, err := client.Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
//		return err
//	}
type PatchFunc func(ctx context.Context, data []byte) error

// HasFinalizer reports whether obj carries finalizer.
func HasFinalizer(obj metav1.Object, finalizer string) bool {
	return slices.Contains(obj.GetFinalizers(), finalizer)
}

// AddFinalizer adds finalizer to obj through patch, unless obj already has it; the patch carries
// obj's resourceVersion, so it fails with a conflict if obj is stale.
func AddFinalizer(ctx context.Context, obj metav1.Object, finalizer string, patch PatchFunc) error {
	if HasFinalizer(obj, finalizer) {
		return nil
	}
	finalizers := append(slices.Clone(obj.GetFinalizers()), finalizer)
	if err := patchFinalizers(ctx, obj, finalizers, patch); err != nil {
		return fmt.Errorf("add finalizer %s to %s: %w", finalizer, objectName(obj), err)
	}
	return nil
}

// RemoveFinalizer removes finalizer from obj through patch, unless obj does not have it; the
// patch carries obj's resourceVersion, so it fails with a conflict if obj is stale.
func RemoveFinalizer(ctx context.Context, obj metav1.Object, finalizer string, patch PatchFunc) error {
	if !HasFinalizer(obj, finalizer) {
		return nil
	}
	finalizers := slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == finalizer })
	if err := patchFinalizers(ctx, obj, finalizers, patch); err != nil {
		return fmt.Errorf("remove finalizer %s from %s: %w", finalizer, objectName(obj), err)
	}
	return nil
}

// FinalizerPatch returns the JSON merge patch that sets obj's finalizers to finalizers, guarded
// by obj's resourceVersion (a merge patch replaces the whole list, so the guard is what keeps a
// concurrent change to the list from being lost).
func FinalizerPatch(obj metav1.Object, finalizers []string) ([]byte, error) {
	if finalizers == nil {
		finalizers = []string{}
	}
	type metadata struct {
		Finalizers      []string `json:"finalizers"`
		ResourceVersion string   `json:"resourceVersion,omitempty"`
	}
	data, err := json.Marshal(struct {
		Metadata metadata `json:"metadata"`
	}{metadata{Finalizers: finalizers, ResourceVersion: obj.GetResourceVersion()}})
	if err != nil {
		return nil, fmt.Errorf("encode finalizer patch: %w", err)
	}
	return data, nil
}

// patchFinalizers sends the patch that sets obj's finalizers.
func patchFinalizers(ctx context.Context, obj metav1.Object, finalizers []string, patch PatchFunc) error {
	data, err := FinalizerPatch(obj, finalizers)
	if err != nil {
		return err
	}
	return patch(ctx, data)
}

// objectName returns namespace/name, or name for a cluster-scoped object.
func objectName(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
