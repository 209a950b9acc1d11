package refagent

import "container/list"

// bounded is a map that holds at most max entries and forgets the one put longest
// ago first. It is not safe for concurrent use: the agent guards it with its mutex.
type bounded[V any] struct {
	max   int
	byKey map[string]*list.Element
	order *list.List // of *entry[V], oldest first
}

type entry[V any] struct {
	key string
	val V
}

func newBounded[V any](max int) *bounded[V] {
	return &bounded[V]{max: max, byKey: map[string]*list.Element{}, order: list.New()}
}

func (b *bounded[V]) get(key string) (V, bool) {
	e, ok := b.byKey[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.Value.(*entry[V]).val, true
}

// put sets key's value and makes it the newest, forgetting the oldest beyond max.
func (b *bounded[V]) put(key string, v V) {
	if e, ok := b.byKey[key]; ok {
		b.order.Remove(e)
	}
	b.byKey[key] = b.order.PushBack(&entry[V]{key: key, val: v})
	for b.order.Len() > b.max {
		oldest := b.order.Front()
		delete(b.byKey, oldest.Value.(*entry[V]).key)
		b.order.Remove(oldest)
	}
}

func (b *bounded[V]) remove(key string) {
	if e, ok := b.byKey[key]; ok {
		delete(b.byKey, key)
		b.order.Remove(e)
	}
}

func (b *bounded[V]) len() int { return b.order.Len() }
