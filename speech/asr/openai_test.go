package asr_test

import (
	"context"
	"errors"
	"github.com/earshot/earshot/speech/grammar/grammartest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/asr"
)

// fakeWhisper is an OpenAI-compatible transcription endpoint that checks the request and
// answers what the test says.
type fakeWhisper struct {
	t       *testing.T
	mu      sync.Mutex
	status  int
	ctype   string
	body    string
	delay   time.Duration
	got     map[string]string // form fields of the last request
	audio   []int16
	auth    string
	reqPath string
}

func (f *fakeWhisper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqPath, f.auth = r.URL.Path, r.Header.Get("Authorization")
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.got = map[string]string{}
	for k, v := range r.MultipartForm.Value {
		f.got[k] = v[0]
	}
	file, hdr, err := r.FormFile("file")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer file.Close()
	samples, rate, err := speech.ReadWAV(file, 1<<20)
	if err != nil || rate != speech.Rate || !strings.HasSuffix(hdr.Filename, ".wav") {
		http.Error(w, "bad wav", http.StatusBadRequest)
		return
	}
	f.audio = samples
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.ctype != "" {
		w.Header().Set("Content-Type", f.ctype)
	}
	w.WriteHeader(f.status)
	io.WriteString(w, f.body)
}

func newFake(t *testing.T, status int, ctype, body string) (*fakeWhisper, *httptest.Server) {
	f := &fakeWhisper{t: t, status: status, ctype: ctype, body: body}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestOpenAIRequest(t *testing.T) {
	g := grammartest.Grammar(t)
	f, srv := newFake(t, 200, "application/json", `{"text":" Buy two oat lattes."}`)
	r, err := asr.NewOpenAI(asr.OpenAIConfig{BaseURL: srv.URL + "/", APIKey: "sk-test", Grammar: g})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Name() != "openai:whisper-1" {
		t.Errorf("name %q", r.Name())
	}
	audio := speech.PinkNoise(16000, 3)
	res, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeCommand, Audio: audio, Lang: "en-GB"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted || res.Text != "Buy two oat lattes." {
		t.Errorf("result %+v, want the transcript accepted", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reqPath != "/v1/audio/transcriptions" || f.auth != "Bearer sk-test" {
		t.Errorf("path %q auth %q", f.reqPath, f.auth)
	}
	if f.got["model"] != "whisper-1" || f.got["language"] != "en" || f.got["response_format"] != "json" {
		t.Errorf("fields %v", f.got)
	}
	if !strings.Contains(f.got["prompt"], "latte") {
		t.Errorf("prompt %q lacks the vocabulary", f.got["prompt"])
	}
	if len(f.audio) != len(audio) || f.audio[100] != audio[100] {
		t.Errorf("audio: %d samples, want %d", len(f.audio), len(audio))
	}
}

func TestOpenAIResponses(t *testing.T) {
	g := grammartest.Grammar(t)
	for _, c := range []struct {
		name, ctype, body string
		mode              wire.SpeechMode
		accepted          bool
		reject, text      string
	}{
		{"out of grammar", "application/json", `{"text":"Play some music."}`, wire.ModeCommand, false, asr.RejectOutOfGrammar, "Play some music."},
		{"verbose json", "application/json", `{"task":"transcribe","language":"english","duration":1.2,"text":"yes","segments":[]}`, wire.ModeConfirm, true, "", "yes"},
		{"text format", "text/plain; charset=utf-8", "cancel my order\n", wire.ModeCommand, true, "", "cancel my order"},
		{"nothing heard", "application/json", `{"text":""}`, wire.ModeCommand, false, asr.RejectNoSpeech, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, srv := newFake(t, 200, c.ctype, c.body)
			r, err := asr.NewOpenAI(asr.OpenAIConfig{BaseURL: srv.URL, Grammar: g, NoPrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Recognize(context.Background(), asr.Request{Mode: c.mode, Audio: make([]int16, 1600)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != c.accepted || res.Reject != c.reject || res.Text != c.text {
				t.Errorf("result %+v, want accepted %v reject %q text %q", res, c.accepted, c.reject, c.text)
			}
		})
	}
}

func TestOpenAIErrors(t *testing.T) {
	g := grammartest.Grammar(t)
	big := `{"text":"` + strings.Repeat("a", asr.MaxResponse) + `"}`
	for _, c := range []struct {
		name, ctype, body string
		status            int
		delay             time.Duration
		want              string
	}{
		{"server error", "application/json", `{"error":{"message":"model overloaded","type":"server_error"}}`, 500, 0, "HTTP 500: model overloaded"},
		{"auth", "application/json", `{"error":{"message":"Incorrect API key provided"}}`, 401, 0, "HTTP 401: Incorrect API key"},
		{"plain error", "text/plain", "bad gateway", 502, 0, "HTTP 502: bad gateway"},
		{"oversized", "application/json", big, 200, 0, "larger than"},
		{"not json", "application/json", `<html>`, 200, 0, "not JSON"},
		{"no text", "application/json", `{"txt":"yes"}`, 200, 0, `no "text"`},
		{"timeout", "application/json", `{"text":"yes"}`, 200, 2 * time.Second, "deadline exceeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newFake(t, c.status, c.ctype, c.body)
			f.delay = c.delay
			r, err := asr.NewOpenAI(asr.OpenAIConfig{BaseURL: srv.URL, Grammar: g, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Recognize(context.Background(), asr.Request{Mode: wire.ModeConfirm, Audio: make([]int16, 1600)})
			if !errors.Is(err, asr.ErrService) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrService with %q", err, c.want)
			}
		})
	}
	for name, cfg := range map[string]asr.OpenAIConfig{
		"no grammar": {BaseURL: "http://localhost"},
		"bad url":    {BaseURL: "localhost:8000", Grammar: g},
		"ftp":        {BaseURL: "ftp://x", Grammar: g},
	} {
		if _, err := asr.NewOpenAI(cfg); !errors.Is(err, asr.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	r, err := asr.NewOpenAI(asr.OpenAIConfig{BaseURL: "http://127.0.0.1:1", Grammar: g})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeConfirm, Audio: make([]int16, asr.MaxAudio+1)}); !errors.Is(err, asr.ErrBadRequest) {
		t.Errorf("too long: %v, want ErrBadRequest", err)
	}
	if res, err := r.Recognize(context.Background(), asr.Request{Mode: wire.ModeConfirm}); err != nil || res.Reject != asr.RejectNoSpeech {
		t.Errorf("no audio: %+v %v, want no_speech", res, err)
	}
}
