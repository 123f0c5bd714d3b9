package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// ResyncPolicy says whether an informer's periodic resync, an update whose resourceVersion did
// not change, should queue the object.
type ResyncPolicy bool

const (
	// IgnoreResyncs drops updates whose resourceVersion did not change: nothing can be learnt.
	IgnoreResyncs ResyncPolicy = false
	// HandleResyncs queues every update, for controllers whose state outside the API server
	// (Vault) can drift and is rechecked on resync.
	HandleResyncs ResyncPolicy = true
)

// EventHandler returns handlers that queue every added, updated or deleted object that filter
// accepts (nil accepts all); filter sees the object itself, never a tombstone.
func (c *Controller) EventHandler(filter func(obj any) bool, resync ResyncPolicy) cache.ResourceEventHandlerFuncs {
	return c.MappedEventHandler(func(obj any) []cache.ObjectName {
		if filter != nil && !filter(obj) {
			return nil
		}
		key, err := cache.ObjectToName(obj)
		if err != nil {
			c.log.WithError(err).Warnf("cannot queue object of type %T", obj)
			return nil
		}
		return []cache.ObjectName{key}
	}, resync)
}

// MappedEventHandler returns handlers that queue the keys keysFor returns for each added,
// updated or deleted object, e.g. the owner of a Secret; keysFor sees the object itself, never
// a tombstone.
func (c *Controller) MappedEventHandler(keysFor func(obj any) []cache.ObjectName, resync ResyncPolicy) cache.ResourceEventHandlerFuncs {
	enqueue := func(obj any) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		for _, key := range keysFor(obj) {
			c.EnqueueKey(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			if resync == IgnoreResyncs && sameResourceVersion(oldObj, newObj) {
				return
			}
			enqueue(newObj)
		},
		DeleteFunc: enqueue,
	}
}

// sameResourceVersion reports whether both objects carry the same, non-empty resourceVersion.
func sameResourceVersion(oldObj, newObj any) bool {
	o, err := meta.Accessor(oldObj)
	if err != nil {
		return false
	}
	n, err := meta.Accessor(newObj)
	if err != nil {
		return false
	}
	return o.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion()
}
