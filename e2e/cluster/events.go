package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// EmitEvents creates a core/v1 Event about one of the DemoDeployments in ns
// right away and then every interval, until ctx ends, and calls onEmit
// (if not nil) with each Event created. Errors (e.g. while kube-apiserver
// is down) are passed to onErr (if not nil) and the loop goes on.
func EmitEvents(ctx context.Context, cs kubernetes.Interface, ns string, interval time.Duration, onEmit func(*corev1.Event), onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		ev, err := CreateEvent(ctx, cs, ns, n)
		switch {
		case err != nil && onErr != nil && ctx.Err() == nil:
			onErr(err)
		case err == nil && onEmit != nil:
			onEmit(ev)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CreateEvent creates the n-th demo Event: about Deployment
// DemoDeployments[n % len], reason DemoTick, with a unique name.
func CreateEvent(ctx context.Context, cs kubernetes.Interface, ns string, n int) (*corev1.Event, error) {
	dep := DemoDeployments[n%len(DemoDeployments)].Name
	now := metav1.NewTime(time.Now())
	return cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: dep + ".demo-"},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Deployment", APIVersion: "apps/v1", Namespace: ns, Name: dep,
		},
		Reason:              "DemoTick",
		Message:             fmt.Sprintf("demo event #%d about deployment %s", n, dep),
		Type:                corev1.EventTypeNormal,
		Source:              corev1.EventSource{Component: "e2e-driver"},
		ReportingController: "e2e-driver",
		ReportingInstance:   "e2e-driver",
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}, metav1.CreateOptions{})
}
