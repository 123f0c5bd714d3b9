package site

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// AggregateBuiltinRoles plays kube-controller-manager's clusterrole-aggregation controller,
// which the local control plane does not run: each of the built-in view, edit and admin
// ClusterRoles gets the rules of every ClusterRole its own aggregationRule selects, as the API
// server has them. In that order, so view's rules reach edit and edit's reach admin, as they
// do in a cluster once the controller has converged. Without it a namespace admin has none
// of the rules deploy/roles aggregates into admin.
func AggregateBuiltinRoles(ctx context.Context, kube kubernetes.Interface) error {
	roles := kube.RbacV1().ClusterRoles()
	for _, name := range []string{"view", "edit", "admin"} {
		role, err := roles.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if role.AggregationRule == nil {
			return fmt.Errorf("built-in ClusterRole %s has no aggregationRule", name)
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			list, err := roles.List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&sel)})
			if err != nil {
				return err
			}
			slices.SortFunc(list.Items, func(a, b rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
			for _, source := range list.Items {
				if source.Name == name {
					continue
				}
				for _, r := range source.Rules {
					if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(have, r) }) {
						rules = append(rules, r)
					}
				}
			}
		}
		role.Rules = rules
		if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("aggregate ClusterRole %s: %w", name, err)
		}
	}
	return nil
}
