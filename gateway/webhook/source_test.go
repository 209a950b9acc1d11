package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/gateway/agent"
)

// memSource is an in-memory event log that keeps Source's promises: events numbered
// by Seq per agent in append order, acknowledgements that never go backwards or past
// the log's end, and a wake channel closed on every append.
type memSource struct {
	mu       sync.Mutex
	events   map[string][]agent.Event
	acked    map[string]uint64
	wake     map[string]chan struct{}
	ackedCh  chan struct{}                            // closed and replaced on every Ack
	checkAck func(agent string, through uint64) error // optional, under mu
	ackErrs  []error                                  // recorded refusals of Ack
}

var _ Source = (*memSource)(nil)

func newMemSource() *memSource {
	return &memSource{
		events:  map[string][]agent.Event{},
		acked:   map[string]uint64{},
		wake:    map[string]chan struct{}{},
		ackedCh: make(chan struct{}),
	}
}

// eventData is what test events carry, so receivers can check order.
type eventData struct {
	Seq    uint64 `json:"seq"`
	Device string `json:"device"`
}

// add appends n events for agentID, spread over devices, and returns them.
func (s *memSource) add(t *testing.T, agentID string, n int, devices ...string) []agent.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []agent.Event
	for range n {
		seq := uint64(len(s.events[agentID]) + 1)
		dev := "dev"
		if len(devices) > 0 {
			dev = devices[int(seq)%len(devices)]
		}
		data, err := json.Marshal(eventData{Seq: seq, Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		ev := agent.Event{
			ID: fmt.Sprintf("evt_%s_%d", agentID, seq), Seq: seq, Type: agent.EventIntent,
			At: time.Now(), Device: dev, User: "u_" + dev, Data: data,
		}
		s.appendLocked(agentID, ev)
		out = append(out, ev)
	}
	return out
}

// put appends ev as given, with the next Seq.
func (s *memSource) put(agentID string, ev agent.Event) agent.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.Seq = uint64(len(s.events[agentID]) + 1)
	s.appendLocked(agentID, ev)
	return ev
}

func (s *memSource) appendLocked(agentID string, ev agent.Event) {
	s.events[agentID] = append(s.events[agentID], ev)
	if ch, ok := s.wake[agentID]; ok {
		close(ch)
		delete(s.wake, agentID)
	}
}

func (s *memSource) Events(ctx context.Context, agentID string, after uint64, limit int) ([]agent.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []agent.Event
	for _, ev := range s.events[agentID] {
		if ev.Seq > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (s *memSource) Acked(ctx context.Context, agentID string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[agentID], nil
}

func (s *memSource) Ack(ctx context.Context, agentID string, through uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := func() error {
		if through < s.acked[agentID] {
			return fmt.Errorf("ack of %s went back from %d to %d", agentID, s.acked[agentID], through)
		}
		if through > uint64(len(s.events[agentID])) {
			return fmt.Errorf("ack of %s through %d past the log's end %d", agentID, through, len(s.events[agentID]))
		}
		if s.checkAck != nil {
			return s.checkAck(agentID, through)
		}
		return nil
	}()
	if err != nil {
		s.ackErrs = append(s.ackErrs, err)
		return err
	}
	s.acked[agentID] = through
	close(s.ackedCh)
	s.ackedCh = make(chan struct{})
	return nil
}

func (s *memSource) Wake(agentID string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.wake[agentID]
	if !ok {
		ch = make(chan struct{})
		s.wake[agentID] = ch
	}
	return ch
}

func (s *memSource) setAcked(agentID string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked[agentID] = seq
}

func (s *memSource) ackedSeq(agentID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[agentID]
}

// waitAcked blocks until agentID is acknowledged through seq; the deadline only turns
// a hang into a failure.
func (s *memSource) waitAcked(t *testing.T, agentID string, seq uint64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got, ch := s.acked[agentID], s.ackedCh
		s.mu.Unlock()
		if got >= seq {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("agent %s acknowledged through %d, want %d", agentID, got, seq)
		}
	}
}

// checkNoAckErrors fails the test if the dispatcher made an acknowledgement the log
// refused.
func (s *memSource) checkNoAckErrors(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.ackErrs {
		t.Errorf("refused ack: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the dispatcher's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
