package lossless

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the otlp_grpc exporter compresses by default
	"google.golang.org/grpc/metadata"
)

// The receivers measured, as Sink tells their log records apart (by the
// instrumentation scope the receiver sets).
const (
	K8sObjects = "k8s_objects"
	K8sEvents  = "k8s_events"
)

// ReplicaHeader is the gRPC metadata key under which every configuration's
// otlp_grpc exporter sends its replica's name (POD_NAME), so that the sink
// knows who exported what.
const ReplicaHeader = "x-replica"

// Export is one log record about one Event, as the sink received it.
type Export struct {
	Replica string    // ReplicaHeader of the request
	At      time.Time // when the sink received it
	Type    string    // k8s_objects: the watch event's type (ADDED, MODIFIED, ...); k8s_events: ""
}

// Sink is an OTLP/gRPC logs receiver in the measuring process. The
// configurations export to it synchronously (no batch processor, no
// sending queue): a request that returned to the collector was counted
// here, so the count of an Event's exports is exact, also across a SIGKILL
// (a file exporter buffers up to flush_interval, which a SIGKILL loses).
// It counts, per receiver and per Event name, every export of a log record
// about an Event whose name has Prefix; other records are counted apart
// (Others).
type Sink struct {
	plogotlp.UnimplementedGRPCServer

	Prefix string

	lis    net.Listener
	server *grpc.Server

	mu      sync.Mutex
	exports map[string]map[string][]Export // receiver -> Event name -> exports
	others  int
	last    time.Time            // the last export with Prefix
	first   map[string]time.Time // receiver -> its first export with Prefix
}

// NewSink listens on 127.0.0.1 (a free port) and serves until Close.
func NewSink(prefix string) (*Sink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Prefix: prefix, lis: lis, server: grpc.NewServer(),
		exports: map[string]map[string][]Export{K8sObjects: {}, K8sEvents: {}}, first: map[string]time.Time{}}
	plogotlp.RegisterGRPCServer(s.server, s)
	go func() { _ = s.server.Serve(lis) }()
	return s, nil
}

// Addr is the sink's host:port (the otlp_grpc exporter's endpoint).
func (s *Sink) Addr() string { return s.lis.Addr().String() }

// Close stops the server at once.
func (s *Sink) Close() { s.server.Stop() }

// Export is the OTLP logs service.
func (s *Sink) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	now := time.Now()
	replica := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(ReplicaHeader); len(v) > 0 {
			replica = v[0]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			receiver, nameAttr := "", ""
			switch scope := sl.Scope().Name(); {
			case strings.HasSuffix(scope, "/k8sobjectsreceiver"):
				receiver, nameAttr = K8sObjects, "event.name"
			case strings.HasSuffix(scope, "/k8seventsreceiver"):
				receiver, nameAttr = K8sEvents, "k8s.event.name"
			}
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				name := ""
				if v, ok := lr.Attributes().Get(nameAttr); ok && receiver != "" {
					name = v.Str()
				}
				if !strings.HasPrefix(name, s.Prefix) {
					s.others++
					continue
				}
				e := Export{Replica: replica, At: now}
				if receiver == K8sObjects && lr.Body().Map().Len() > 0 {
					if v, ok := lr.Body().Map().Get("type"); ok {
						e.Type = v.Str()
					}
				}
				s.exports[receiver][name] = append(s.exports[receiver][name], e)
				s.last = now
				if _, ok := s.first[receiver]; !ok {
					s.first[receiver] = now
				}
			}
		}
	}
	return plogotlp.NewExportResponse(), nil
}

// Exports is a copy of what the sink counted of receiver: Event name ->
// its exports, in the order received.
func (s *Sink) Exports(receiver string) map[string][]Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Export, len(s.exports[receiver]))
	for k, v := range s.exports[receiver] {
		out[k] = append([]Export(nil), v...)
	}
	return out
}

// Others is the number of log records that were not about an Event with
// Prefix (other Events of the cluster, or records the sink could not
// attribute to a receiver).
func (s *Sink) Others() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.others
}

// Last is when the sink last counted an export with Prefix (zero if never).
func (s *Sink) Last() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Watching is when every one of receivers had first exported an Event with
// Prefix: from then on their watches were open (ok false before). Events
// created before it tell nothing about handovers.
func (s *Sink) Watching(receivers ...string) (at time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range receivers {
		t, seen := s.first[rc]
		if !seen {
			return time.Time{}, false
		}
		if t.After(at) {
			at = t
		}
	}
	return at, true
}
