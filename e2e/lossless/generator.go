package lossless

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Created is one Event the generator created: its name and when its Create
// returned (the API server had stored it by then).
type Created struct {
	Name string
	At   time.Time
}

// Generator creates core/v1 Events in one namespace at a steady rate, each
// with a unique name (Prefix + a sequence number), as the legacy event
// recorder of client-go writes them (firstTimestamp = lastTimestamp = now,
// in seconds; no eventTime), about a Pod that need not exist.
type Generator struct {
	Namespace string
	Prefix    string
	Rate      float64 // Events per second

	cs kubernetes.Interface

	mu      sync.Mutex
	created []Created
	errs    []string
	started time.Time
	stopped time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewGenerator returns a generator that creates Events with its own client
// of cfg (no client-side rate limit below rate).
func NewGenerator(cfg *rest.Config, ns, prefix string, rate float64) (*Generator, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = float32(4*rate+10), int(4*rate+20)
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, err
	}
	return &Generator{Namespace: ns, Prefix: prefix, Rate: rate, cs: cs}, nil
}

// Start creates Events from now on, one every 1/Rate, each Create in its
// own goroutine (at most 16 at once) so that a slow request does not slow
// the rate, until Stop.
func (g *Generator) Start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	g.done = make(chan struct{})
	g.mu.Lock()
	g.started = time.Now()
	g.mu.Unlock()
	go func() {
		defer close(g.done)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		t := time.NewTicker(time.Duration(float64(time.Second) / g.Rate))
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case sem <- struct{}{}:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				g.create(ctx, n)
			}()
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-t.C:
			}
		}
	}()
}

func (g *Generator) create(ctx context.Context, n int) {
	name := fmt.Sprintf("%s%07d", g.Prefix, n)
	now := metav1.NewTime(time.Now())
	_, err := g.cs.CoreV1().Events(g.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: g.Namespace, Name: "lossless-subject",
		},
		Reason:              "LosslessTick",
		Message:             fmt.Sprintf("lossless measurement event #%d", n),
		Type:                corev1.EventTypeNormal,
		Source:              corev1.EventSource{Component: "lossless-generator"},
		ReportingController: "lossless-generator",
		ReportingInstance:   "lossless-generator",
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}, metav1.CreateOptions{})
	at := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			g.errs = append(g.errs, fmt.Sprintf("%s: %v", name, err))
		}
		return
	}
	g.created = append(g.created, Created{Name: name, At: at})
}

// Stop stops creating and waits for the Creates under way.
func (g *Generator) Stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.mu.Lock()
	if g.stopped.IsZero() {
		g.stopped = time.Now()
	}
	g.mu.Unlock()
}

// Created is every Event created so far, in the order their Creates
// returned.
func (g *Generator) Created() []Created {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Created(nil), g.created...)
}

// Errors are the Creates that failed (while the generator ran).
func (g *Generator) Errors() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.errs...)
}

// Span is when the generator started and stopped (zero while it runs).
func (g *Generator) Span() (started, stopped time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started, g.stopped
}
