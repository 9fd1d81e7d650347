package cluster

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// DemoDeployments are the Deployments SeedDemo creates, with their replicas.
var DemoDeployments = []struct {
	Name     string
	Replicas int32
}{{"web", 2}, {"api", 1}, {"worker", 3}}

// DemoNode is the node SeedDemo's Pods are bound to when it creates them.
const DemoNode = "demo-node"

// SeedDemo creates namespace ns and DemoDeployments in it. With
// createPods (no controller manager), it also creates what the controllers
// and a kubelet would have: a Ready Node, Running Pods for every replica,
// and the Deployments' status. With a controller manager, the Deployments'
// Pods are created by it and stay Pending (there is no scheduler).
func SeedDemo(ctx context.Context, cs kubernetes.Interface, ns string, createPods bool) error {
	if err := upsert(ctx, cs.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if createPods {
		if err := demoNode(ctx, cs); err != nil {
			return err
		}
	}
	for _, d := range DemoDeployments {
		labels := map[string]string{"app": d.Name}
		template := corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:  d.Name,
				Image: "registry.invalid/demo/" + d.Name + ":1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: mustQuantity("50m"), corev1.ResourceMemory: mustQuantity("32Mi"),
				}},
			}}},
		}
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(d.Replicas),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: template,
			},
		}
		if err := upsert(ctx, cs.AppsV1().Deployments(ns), dep); err != nil {
			return err
		}
		if !createPods {
			continue
		}
		for i := range d.Replicas {
			if err := runningPod(ctx, cs, ns, fmt.Sprintf("%s-%d", d.Name, i), template); err != nil {
				return err
			}
		}
		cur, err := cs.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = appsv1.DeploymentStatus{
			ObservedGeneration: cur.Generation,
			Replicas:           d.Replicas, UpdatedReplicas: d.Replicas, ReadyReplicas: d.Replicas, AvailableReplicas: d.Replicas,
		}
		if _, err := cs.AppsV1().Deployments(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func demoNode(ctx context.Context, cs kubernetes.Interface) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: DemoNode, Labels: map[string]string{"kubernetes.io/hostname": DemoNode}}}
	if err := upsert(ctx, cs.CoreV1().Nodes(), node); err != nil {
		return err
	}
	cur, err := cs.CoreV1().Nodes().Get(ctx, DemoNode, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{corev1.ResourceCPU: mustQuantity("4"), corev1.ResourceMemory: mustQuantity("8Gi"), corev1.ResourcePods: mustQuantity("110")}
	cur.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}

func runningPod(ctx context.Context, cs kubernetes.Interface, ns, name string, t corev1.PodTemplateSpec) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: t.Labels}, Spec: *t.Spec.DeepCopy()}
	pod.Spec.NodeName = DemoNode
	if err := upsert(ctx, cs.CoreV1().Pods(ns), pod); err != nil {
		return err
	}
	cur, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.NewTime(time.Now())
	cur.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: t.Spec.Containers[0].Name, Image: t.Spec.Containers[0].Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}
