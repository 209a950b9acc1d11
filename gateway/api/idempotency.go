package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/gateway/problem"
)

// Idempotency-Key handling for POSTs that move money or ask the user (as in the Agentic
// Commerce Protocol): the first answer to a key is stored with a fingerprint of the
// request; a retry with the same key and body gets that answer again (with
// Idempotent-Replayed: true), the same key with another body is refused, and a retry
// while the first is still running is told to wait (409, Retry-After). Answers of 500
// and above are not stored, so the request may be retried. Records live
// IdempotencyTTL.
//
//	apiidem/<agent>/<sha-256 of the key>  the stored answer

// IdempotencyTTL is how long a stored answer is replayed.
const IdempotencyTTL = 24 * time.Hour

// MaxIdempotencyKey bounds the Idempotency-Key header.
const MaxIdempotencyKey = 255

type idempotency struct {
	store kv.Store
	now   func() time.Time

	mu       sync.Mutex
	inflight map[string]bool
}

func newIdempotency(store kv.Store) *idempotency {
	return &idempotency{store: store, now: time.Now, inflight: make(map[string]bool)}
}

type idemRecord struct {
	Fingerprint string    `json:"fp"`
	Status      int       `json:"status"`
	ContentType string    `json:"ctype,omitempty"`
	Body        []byte    `json:"body"`
	At          time.Time `json:"at"`
}

// serve runs h once per key (see above); without a key it runs h, unless required.
func (id *idempotency) serve(w http.ResponseWriter, r *http.Request, agentID string, required bool, h http.HandlerFunc) {
	key := r.Header.Get("Idempotency-Key")
	switch {
	case key == "" && required:
		problem.Write(w, http.StatusBadRequest, "idempotency_key_required", "an Idempotency-Key header is required")
		return
	case key == "":
		h(w, r)
		return
	case len(key) > MaxIdempotencyKey:
		problem.Write(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("the Idempotency-Key is over %d bytes", MaxIdempotencyKey))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		problem.Write(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return
	}
	if len(body) > MaxBodyBytes {
		problem.Write(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", MaxBodyBytes))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256([]byte(key))
	dbKey := []byte("apiidem/" + agentID + "/" + hex.EncodeToString(sum[:]))
	fpSum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
	fp := hex.EncodeToString(fpSum[:])

	rec, err := id.load(r, dbKey)
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "internal", "the gateway failed; the request may be retried")
		return
	}
	if rec != nil {
		if rec.Fingerprint != fp {
			problem.Write(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		if rec.ContentType != "" {
			w.Header().Set("Content-Type", rec.ContentType)
		}
		w.WriteHeader(rec.Status)
		_, _ = w.Write(rec.Body) // as in reply: nothing more to tell a client that left
		return
	}
	id.mu.Lock()
	if id.inflight[string(dbKey)] {
		id.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		problem.Write(w, http.StatusConflict, "in_flight", "a request with this Idempotency-Key is still being processed")
		return
	}
	id.inflight[string(dbKey)] = true
	id.mu.Unlock()
	defer func() {
		id.mu.Lock()
		delete(id.inflight, string(dbKey))
		id.mu.Unlock()
	}()

	rw := &recorder{header: w.Header(), status: http.StatusOK}
	h(rw, r)
	if rw.status < 500 {
		b, err := json.Marshal(idemRecord{Fingerprint: fp, Status: rw.status, ContentType: rw.header.Get("Content-Type"), Body: rw.buf.Bytes(), At: id.now()})
		if err == nil {
			err = id.store.Update(r.Context(), func(txn kv.Txn) error { return txn.Set(dbKey, b) })
		}
		if err != nil {
			// The request took effect; a retry may see it again as a conflict or
			// repeat it where the operation itself is idempotent.
			problem.Write(w, http.StatusInternalServerError, "internal", "the answer could not be stored; retry with the same Idempotency-Key")
			return
		}
	}
	w.WriteHeader(rw.status)
	_, _ = w.Write(rw.buf.Bytes())
}

func (id *idempotency) load(r *http.Request, key []byte) (*idemRecord, error) {
	var rec *idemRecord
	err := id.store.View(r.Context(), func(txn kv.Txn) error {
		v, err := txn.Get(key)
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		rec = new(idemRecord)
		return json.Unmarshal(v, rec)
	})
	if rec != nil && id.now().Sub(rec.At) > IdempotencyTTL {
		rec = nil
	}
	return rec, err
}

// recorder keeps a handler's answer so it can be stored before it is sent.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	buf    bytes.Buffer
}

func (rw *recorder) Header() http.Header { return rw.header }
func (rw *recorder) WriteHeader(code int) {
	if !rw.wrote {
		rw.status, rw.wrote = code, true
	}
}
func (rw *recorder) Write(b []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	return rw.buf.Write(b)
}
