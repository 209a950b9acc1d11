package asr

import (
	"bytes"
	"context"
	"encoding/json"

	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/earshot/earshot/speech"
	"github.com/earshot/earshot/speech/grammar"
)

// MaxResponse bounds a transcription service's response body.
const MaxResponse = 1 << 20

// maxPrompt bounds the vocabulary hint sent with each request (Whisper reads at most
// 224 tokens of it).
const maxPrompt = 800

// OpenAIConfig configures the client of an OpenAI-compatible transcription service.
type OpenAIConfig struct {
	// BaseURL of the service, without /v1: "https://api.openai.com". Required.
	BaseURL string
	// Model; default "whisper-1".
	Model string
	// APIKey is sent as a Bearer token when set.
	APIKey string
	// Timeout of one request; default 30 s.
	Timeout time.Duration
	// Client; default a new http.Client.
	Client *http.Client
	// Grammar judges the transcripts. Required.
	Grammar *grammar.Grammar
	// NoPrompt leaves out the vocabulary hint (the grammar's words).
	NoPrompt bool
}

type openAI struct {
	cfg    OpenAIConfig
	url    string
	prompt string
}

var _ Recognizer = (*openAI)(nil)

// NewOpenAI returns a client of POST {BaseURL}/v1/audio/transcriptions. A transcript is
// accepted iff it parses in the grammar of the request's mode.
func NewOpenAI(cfg OpenAIConfig) (Recognizer, error) {
	if cfg.Grammar == nil {
		return nil, fmt.Errorf("%w: openai: no grammar", ErrConfig)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: openai: base URL %q: want http(s)://host[:port][/path]", ErrConfig, cfg.BaseURL)
	}
	if cfg.Model == "" {
		cfg.Model = "whisper-1"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	o := &openAI{cfg: cfg, url: strings.TrimRight(cfg.BaseURL, "/") + "/v1/audio/transcriptions"}
	if !cfg.NoPrompt {
		o.prompt = vocabulary(cfg.Grammar.Words(), maxPrompt)
	}
	return o, nil
}

// vocabulary joins words up to max bytes.
func vocabulary(words []string, max int) string {
	var b strings.Builder
	for _, w := range words {
		if b.Len()+len(w)+2 > max {
			break
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w)
	}
	return b.String()
}

func (o *openAI) Name() string { return "openai:" + o.cfg.Model }

func (o *openAI) Close() error { return nil }

func (o *openAI) Recognize(ctx context.Context, req Request) (Result, error) {
	if err := checkMode(req.Mode); err != nil {
		return Result{}, err
	}
	if len(req.Audio) > MaxAudio {
		return Result{}, fmt.Errorf("%w: %d samples, max %d", ErrBadRequest, len(req.Audio), MaxAudio)
	}
	if len(req.Audio) == 0 {
		return Result{Reject: RejectNoSpeech}, nil
	}
	body, ctype, err := o.form(req)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, body)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrService, err)
	}
	hreq.Header.Set("Content-Type", ctype)
	hreq.Header.Set("Accept", "application/json")
	if o.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.cfg.Client.Do(hreq)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrService, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: reading response: %w", ErrService, err)
	}
	if len(raw) > MaxResponse {
		return Result{}, fmt.Errorf("%w: response larger than %d bytes", ErrService, MaxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("%w: HTTP %d: %s", ErrService, resp.StatusCode, serviceError(raw))
	}
	text, err := transcript(resp.Header.Get("Content-Type"), raw)
	if err != nil {
		return Result{}, err
	}
	return judge(o.cfg.Grammar, req.Mode, text), nil
}

// form builds the multipart request body.
func (o *openAI) form(req Request) (io.Reader, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "utterance.wav")
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrService, err)
	}
	if err := speech.WriteWAV(fw, req.Audio, speech.Rate); err != nil {
		return nil, "", fmt.Errorf("%w: wav: %w", ErrService, err)
	}
	lang := req.Lang
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if lang == "" {
		lang = "en"
	}
	fields := [][2]string{{"model", o.cfg.Model}, {"language", strings.ToLower(lang)}, {"response_format", "json"}}
	if o.prompt != "" {
		fields = append(fields, [2]string{"prompt", o.prompt})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrService, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrService, err)
	}
	return &buf, mw.FormDataContentType(), nil
}

// transcript reads the text of a json, verbose_json or text response.
func transcript(ctype string, raw []byte) (string, error) {
	mt, _, _ := mime.ParseMediaType(ctype)
	trimmed := bytes.TrimSpace(raw)
	if mt == "text/plain" || (mt != "application/json" && !bytes.HasPrefix(trimmed, []byte("{"))) {
		return strings.TrimSpace(string(raw)), nil
	}
	var v struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return "", fmt.Errorf("%w: response is not JSON: %w", ErrService, err)
	}
	if v.Text == nil {
		return "", fmt.Errorf("%w: response has no \"text\"", ErrService)
	}
	return strings.TrimSpace(*v.Text), nil
}

// serviceError extracts the message of an error response ({"error":{"message":...}}).
func serviceError(raw []byte) string {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &v) == nil && len(v.Error) > 0 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &e) == nil && e.Message != "" {
			return clip(e.Message)
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return clip(s)
		}
	}
	if s := strings.TrimSpace(string(raw)); s != "" {
		return clip(s)
	}
	return "(empty body)"
}

func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
