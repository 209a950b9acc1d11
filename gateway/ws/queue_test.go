package ws

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Prompt audio may fill only half the send queue: an event queued while a prompt is
// being spoken must find room, or a busy device would be cut off as a slow consumer
// in the middle of its purchase (it was, under load, in CI).
func TestAudioLeavesRoomForEvents(t *testing.T) {
	c := &conn{send: make(chan outFrame, 8), audio: make(chan struct{}, 4), done: make(chan struct{})}
	for i := range 4 {
		if err := c.SendBinary(t.Context(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.SendBinary(ctx, []byte{9}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fifth audio frame: %v, want it to wait for room", err)
	}
	for range 4 {
		if err := c.Send([]byte("{}")); err != nil {
			t.Fatalf("an event behind the audio: %v", err)
		}
	}
	// The writer takes the first audio frame: its room comes back to audio.
	f := <-c.send
	c.sent(f)
	if !f.binary {
		t.Fatal("the queue lost its order")
	}
	if err := c.SendBinary(t.Context(), []byte{5}); err != nil {
		t.Fatal(err)
	}
	if len(c.audio) != 4 || len(c.send) != 8 {
		t.Fatalf("audio tokens %d, queued %d", len(c.audio), len(c.send))
	}
}
