// Command clientgo-candidate is a plain client-go leader-election candidate
// (k8s.io/client-go v0.34.3 leaderelection.LeaderElector, a
// resourcelock.LeaseLock, ReleaseOnCancel) for the end-to-end scenarios
// that run it next to replicas of otelcol-leader on one Lease (package
// clientgo runs it and reads its log).
//
// While it leads, it lists the Pods of --work-namespace every --work-every:
// work the API server's audit log attributes to its ServiceAccount, so that
// its activity can be compared with the collectors' from outside. Short
// requests, not a watch: ReleaseOnCancel releases the Lease as soon as the
// context is cancelled, while the API server ends a cancelled watch only
// when it notices the client gone (once 100 ms later, under load), so a
// watch would show the candidate active after its release, and after a
// quick successor's start, when its work had stopped. It logs
// (JSON lines on stdout, messages in package clientgo) when it campaigns,
// when OnStartedLeading runs (before any work) and when LeaderElector.Run
// returns (after OnStoppedLeading waited for the work to end). Run returns
// after the first loss; the program then campaigns again, as a component
// that wraps Run in a loop does. SIGTERM or SIGINT cancel its context: Run
// releases the Lease (ReleaseOnCancel) and returns, and the program exits 0.
//
//	clientgo-candidate --kubeconfig sa.kubeconfig --namespace ns --lease otel-cluster-receivers --identity clientgo-1
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/leaderreceivercreator/leaderreceivercreator/e2e/clientgo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clientgo-candidate:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		kubeconfig, namespace, lease, identity, workNamespace string
		leaseDuration, renewDeadline, retryPeriod, workEvery  time.Duration
	)
	flag.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig (a ServiceAccount's)")
	flag.StringVar(&namespace, "namespace", "", "namespace of the Lease")
	flag.StringVar(&lease, "lease", "otel-cluster-receivers", "name of the Lease")
	flag.StringVar(&identity, "identity", "", "holder identity (required)")
	flag.DurationVar(&leaseDuration, "lease-duration", 15*time.Second, "LeaseDuration")
	flag.DurationVar(&renewDeadline, "renew-deadline", 10*time.Second, "RenewDeadline")
	flag.DurationVar(&retryPeriod, "retry-period", 2*time.Second, "RetryPeriod")
	flag.StringVar(&workNamespace, "work-namespace", "default", "namespace whose Pods it lists while leading")
	flag.DurationVar(&workEvery, "work-every", 200*time.Millisecond, "interval of the Pod lists while leading")
	flag.Parse()
	if namespace == "" || identity == "" {
		return fmt.Errorf("--namespace and --identity are required")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = "clientgo-candidate/" + identity
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	log := clientgo.NewLogger(os.Stdout, identity, namespace+"/"+lease)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	for ctx.Err() == nil {
		w := &worker{log: log, cs: cs, namespace: workNamespace, every: workEvery}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: lease},
				Client:     cs.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
			},
			LeaseDuration:   leaseDuration,
			RenewDeadline:   renewDeadline,
			RetryPeriod:     retryPeriod,
			ReleaseOnCancel: true,
			Name:            lease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: w.lead,
				OnStoppedLeading: w.stop,
			},
		})
		if err != nil {
			return err
		}
		log.Log(clientgo.MsgCampaigning, nil)
		le.Run(ctx)
		log.Log(clientgo.MsgRunReturned, map[string]any{"led": w.led(), "cancelled": ctx.Err() != nil})
	}
	log.Log(clientgo.MsgExiting, nil)
	return nil
}

// worker is one campaign's work: it lists Pods from OnStartedLeading until
// the callback's context ends; OnStoppedLeading waits for it, so that Run
// returns only after the last request returned.
type worker struct {
	log       *clientgo.Logger
	cs        kubernetes.Interface
	namespace string
	every     time.Duration

	mu      sync.Mutex
	started bool // OnStartedLeading logged and the work began
	stopped bool // OnStoppedLeading ran: too late to begin
	wg      sync.WaitGroup
}

// lead is OnStartedLeading. client-go calls it in a goroutine of its own,
// which may begin after Run has already stopped leading: then it does
// nothing.
func (w *worker) lead(ctx context.Context) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.started = true
	w.wg.Add(1)
	w.log.Log(clientgo.MsgStartedLeading, nil)
	w.mu.Unlock()
	defer w.wg.Done()

	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.cs.CoreV1().Pods(w.namespace).List(rctx, metav1.ListOptions{})
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Log("listing pods failed", map[string]any{"error": err.Error()})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop is OnStoppedLeading: Run calls it (also when it never led) after
// the callback's context is cancelled.
func (w *worker) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *worker) led() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}
