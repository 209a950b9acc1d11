package mqtt

import (
	"bytes"
	"sort"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// byteStore is paho's in-flight message store, keeping packets encoded. paho 1.5.1's
// memory store hands resume() the very packet the connection's writer may be sending
// at that moment, and resume sets its DUP flag: a data race whenever the gateway
// publishes while a persistent session resumes (every reconnect). Decoding a fresh
// copy on Get keeps the two apart. Put is called before a packet is handed to the
// writer, so encoding it there is safe. Its size is bounded by paho's in-flight
// message ids.
type byteStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ paho.Store = (*byteStore)(nil)

func newByteStore() *byteStore { return &byteStore{m: make(map[string][]byte)} }

func (s *byteStore) Open()  {}
func (s *byteStore) Close() {}

func (s *byteStore) Put(key string, p packets.ControlPacket) {
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		return // an unencodable packet cannot be re-sent either
	}
	s.mu.Lock()
	s.m[key] = b.Bytes()
	s.mu.Unlock()
}

func (s *byteStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	return p
}

func (s *byteStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *byteStore) Del(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (s *byteStore) Reset() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}
