package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway"
	"github.com/earshot/earshot/gateway/agent"
	"github.com/earshot/earshot/gateway/api"
	"github.com/earshot/earshot/gateway/webhook"
	"github.com/google/jsonschema-go/jsonschema"
)

// The OpenAPI document (gateway/api/openapi.json) is kept true three ways: its
// operations are exactly the API's routes, with their auth, scope and idempotency;
// its references resolve; and real answers of a running gateway, driven through a
// purchase, the admin routes and their refusals, validate against the schemas it
// documents for their operation, status and media type.
//
// To catch drift the validator is stricter than the document: every object schema
// that lists properties is closed (additionalProperties false), so a member the
// gateway sends but the document does not name fails, as does a renamed one; and a
// JSON number written with a fraction or an exponent fails anywhere, since the API
// sends only integers (money in minor units).

// oaDoc is the parsed document.
type oaDoc struct {
	raw map[string]any // as written
	// strict is the document with schema references rewritten to #/$defs/... and
	// every object schema closed, for validation.
	strict map[string]any
	ops    map[string]map[string]any // "GET /v1/me" -> operation (strict)

	mu       sync.Mutex
	resolved map[string]*jsonschema.Resolved
	answered map[string]bool // operations answered: "GET /v1/me"
}

var oaMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	d := &oaDoc{ops: map[string]map[string]any{}, resolved: map[string]*jsonschema.Resolved{}, answered: map[string]bool{}}
	if err := json.Unmarshal(api.OpenAPI, &d.raw); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	rewritten := strings.ReplaceAll(string(api.OpenAPI), `"#/components/schemas/`, `"#/$defs/`)
	if err := json.Unmarshal([]byte(rewritten), &d.strict); err != nil {
		t.Fatal(err)
	}
	closeObjects(d.strict)
	paths, _ := d.strict["paths"].(map[string]any)
	for p, item := range paths {
		for m, o := range item.(map[string]any) {
			if slices.Contains(oaMethods, m) {
				d.ops[strings.ToUpper(m)+" "+p] = o.(map[string]any)
			}
		}
	}
	return d
}

// closeObjects sets additionalProperties false on every object schema that lists
// properties and says nothing of others.
func closeObjects(doc any) {
	walkJSON(doc, func(v any) {
		m, ok := v.(map[string]any)
		if _, props := m["properties"].(map[string]any); ok && props && m["type"] == "object" {
			if _, set := m["additionalProperties"]; !set {
				m["additionalProperties"] = false
			}
		}
	})
}

// walkJSON calls fn on v and every value under it.
func walkJSON(v any, fn func(any)) {
	fn(v)
	switch v := v.(type) {
	case map[string]any:
		for _, c := range v {
			walkJSON(c, fn)
		}
	case []any:
		for _, c := range v {
			walkJSON(c, fn)
		}
	}
}

// jsonPointer walks a JSON pointer ("/components/schemas/Tx") in v.
func jsonPointer(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	for tok := range strings.SplitSeq(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// schema compiles a schema node of the strict document, with every component schema
// as $defs.
func (d *oaDoc) schema(node map[string]any) (*jsonschema.Resolved, error) {
	b, err := json.Marshal(node)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.resolved[string(b)]; ok {
		return r, nil
	}
	root := map[string]any{}
	for k, v := range node {
		root[k] = v
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	defs, _ := jsonPointer(d.strict, "/components/schemas")
	root["$defs"] = defs
	rb, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(rb, &s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	d.resolved[string(b)] = r
	return r, nil
}

// validate checks a JSON body against a schema node of the strict document.
func (d *oaDoc) validate(node map[string]any, body []byte) error {
	if err := integersOnly(body); err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	r, err := d.schema(node)
	if err != nil {
		return err
	}
	return r.Validate(v)
}

// integersOnly fails on a JSON number with a fraction or an exponent.
func integersOnly(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	var bad error
	walkJSON(v, func(v any) {
		if n, ok := v.(json.Number); ok && strings.ContainsAny(n.String(), ".eE") && bad == nil {
			bad = fmt.Errorf("the number %s is not an integer: the API sends integers only", n)
		}
	})
	return bad
}

// operation finds the documented operation for a request path, preferring the
// template with the most literal segments.
func (d *oaDoc) operation(method, path string) (string, map[string]any) {
	best, bestLit := "", -1
	ps := strings.Split(path, "/")
	for key := range d.ops {
		m, tmpl, _ := strings.Cut(key, " ")
		ts := strings.Split(tmpl, "/")
		if m != method || len(ts) != len(ps) {
			continue
		}
		lit := 0
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") && ps[i] != "" {
				continue
			}
			if ts[i] != ps[i] {
				lit = -1
				break
			}
			lit++
		}
		if lit > bestLit {
			best, bestLit = key, lit
		}
	}
	return best, d.ops[best]
}

// oaAnswer is an answer of the gateway, checked against the document.
type oaAnswer struct {
	status int
	header http.Header
	body   []byte
	obj    map[string]any // the JSON object answered, if any
}

// str returns a string member of the answer.
func (a oaAnswer) str(name string) string { s, _ := a.obj[name].(string); return s }

// do makes a request and checks the answer against the operation's documented
// response for its status and media type; a 2xx answer also checks that the request
// body was one the document allows. in is marshalled as JSON, a string sent as is.
func (d *oaDoc) do(t *testing.T, g *gw, method, path, bearer string, hdr map[string]string, in any) oaAnswer {
	t.Helper()
	var reqBody []byte
	if in != nil {
		if s, ok := in.(string); ok {
			reqBody = []byte(s)
		} else {
			var err error
			if reqBody, err = json.Marshal(in); err != nil {
				t.Fatal(err)
			}
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, g.srv.URL()+path, bytes.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := oaAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	what := fmt.Sprintf("%s %s answered %d", method, path, a.status)
	key, op := d.operation(method, req.URL.Path)
	if op == nil {
		t.Fatalf("%s: no operation in openapi.json", what)
	}
	if a.status < 300 && in != nil {
		node, ok := jsonPointer(op, "/requestBody/content/application~1json/schema")
		if !ok {
			t.Fatalf("%s: a body was taken, but %s documents none", what, key)
		}
		if err := d.validate(node.(map[string]any), reqBody); err != nil {
			t.Errorf("%s: the request body the gateway took is not one %s documents: %v\n%s", what, key, err, reqBody)
		}
	}
	d.checkAnswer(t, what, key, op, a)
	if json.Valid(body) {
		_ = json.Unmarshal(body, &a.obj) // an array or a scalar leaves obj nil
	}
	return a
}

// checkAnswer checks an answer against the response documented for its status.
func (d *oaDoc) checkAnswer(t *testing.T, what, key string, op map[string]any, a oaAnswer) {
	t.Helper()
	d.mu.Lock()
	d.answered[key] = true
	d.mu.Unlock()
	resp, ok := jsonPointer(op, "/responses/"+strconv.Itoa(a.status))
	if !ok {
		t.Errorf("%s: %s documents no %d response\n%s", what, key, a.status, a.body)
		return
	}
	if ref, ok := resp.(map[string]any)["$ref"].(string); ok {
		if resp, ok = jsonPointer(d.strict, strings.TrimPrefix(ref, "#")); !ok {
			t.Errorf("%s: %s does not resolve", what, ref)
			return
		}
	}
	if a.header.Get("Idempotent-Replayed") != "" {
		if _, ok := jsonPointer(resp, "/headers/Idempotent-Replayed"); !ok {
			t.Errorf("%s: Idempotent-Replayed is sent, but the %d response does not document it", what, a.status)
		}
	}
	content, _ := resp.(map[string]any)["content"].(map[string]any)
	if len(content) == 0 {
		if len(a.body) != 0 {
			t.Errorf("%s: a body, but the %d response of %s documents none: %s", what, a.status, key, a.body)
		}
		return
	}
	media, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", what, a.header.Get("Content-Type"), err)
		return
	}
	mt, ok := content[media].(map[string]any)
	if !ok {
		t.Errorf("%s: media type %s is not documented for %s %d", what, media, key, a.status)
		return
	}
	if media != "application/json" && !strings.HasSuffix(media, "+json") {
		return
	}
	schema, _ := mt["schema"].(map[string]any)
	if err := d.validate(schema, a.body); err != nil {
		t.Errorf("%s: the answer does not match the documented schema: %v\n%s", what, err, a.body)
	}
}

// oaWant fails unless the answer has the status and, for a problem, the code.
func oaWant(t *testing.T, a oaAnswer, status int, code string) oaAnswer {
	t.Helper()
	if a.status != status || (code != "" && a.str("code") != code) {
		t.Fatalf("answered %d %s, want %d %s", a.status, a.body, status, code)
	}
	return a
}

// sseEvent is one event of GET /v1/events.
type sseEvent struct {
	id, event string
	data      []byte
	ev        agent.Event
}

// events reads the agent's event stream (after the given seq) until stop says so,
// checking each event against the document: the data line against the stream's
// documented event schema, id against seq, event against type, and the webhook body
// the same event makes against the webhook's documented payload.
func (d *oaDoc) events(t *testing.T, g *gw, key string, after uint64, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", g.srv.URL()+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	op := d.ops["GET /v1/events"]
	mt, ok := jsonPointer(op, fmt.Sprintf("/responses/%d/content/text~1event-stream", resp.StatusCode))
	if !ok || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events answered %d %s, not a documented event stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dataSchema, _ := mt.(map[string]any)["x-earshot-sse-data"].(map[string]any)
	if dataSchema == nil {
		t.Fatal("GET /v1/events documents no x-earshot-sse-data schema for its events")
	}
	var out []sseEvent
	var cur sseEvent
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended after %d events: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = []byte(line[6:])
		case line == "" && cur.data != nil:
			if err := d.validate(dataSchema, cur.data); err != nil {
				t.Errorf("event %s does not match the documented Event: %v\n%s", cur.id, err, cur.data)
			}
			if err := json.Unmarshal(cur.data, &cur.ev); err != nil {
				t.Fatal(err)
			}
			if cur.id != strconv.FormatUint(cur.ev.Seq, 10) || cur.event != cur.ev.Type {
				t.Errorf("SSE id %s event %s for an event of seq %d type %s", cur.id, cur.event, cur.ev.Seq, cur.ev.Type)
			}
			d.checkWebhook(t, cur.ev)
			out = append(out, cur)
			if stop(cur) {
				return out
			}
			cur = sseEvent{}
		case line == "":
		default:
			t.Fatalf("unexpected event stream line %q", line)
		}
	}
}

// checkWebhook checks the webhook body an event makes against the documented
// webhook payload of its type.
func (d *oaDoc) checkWebhook(t *testing.T, ev agent.Event) {
	t.Helper()
	name := "transaction"
	if ev.Type == agent.EventIntent {
		name = "intent.received"
	}
	node, ok := jsonPointer(d.strict, "/webhooks/"+name+"/post/requestBody/content/application~1json/schema")
	if !ok {
		t.Fatalf("openapi.json documents no webhook %s", name)
	}
	body, err := webhook.Payload(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.validate(node.(map[string]any), body); err != nil {
		t.Errorf("the webhook body of %s does not match the documented payload: %v\n%s", ev.Type, err, body)
	}
}

// oaAgent is an embedded agent that leaves every answer to the test, over REST.
type oaAgent struct {
	key      string
	intents  chan agent.Intent
	mandates chan agent.Mandate
}

func (a *oaAgent) ID() string                                     { return "openapi" }
func (a *oaAgent) Run(ctx context.Context) error                  { <-ctx.Done(); return nil }
func (a *oaAgent) OnOutcome(context.Context, agent.Outcome) error { return nil }
func (a *oaAgent) OnIntent(ctx context.Context, in agent.Intent) error {
	select {
	case a.intents <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (a *oaAgent) OnMandate(ctx context.Context, m agent.Mandate) error {
	select {
	case a.mandates <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func oaRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	var zero T
	return zero
}

// TestOpenAPIDocument checks the document against the API's routes and itself.
func TestOpenAPIDocument(t *testing.T) {
	d := loadOpenAPI(t)
	if v, _ := d.raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", v)
	}
	if title, _ := jsonPointer(d.raw, "/info/title"); title != "earshot" {
		t.Errorf("info.title %v", title)
	}

	// The operations are exactly the routes, both ways.
	routes := apiRoutes(t)
	served := map[string]api.Route{}
	for _, rt := range routes {
		served[rt.Method+" "+rt.Path] = rt
	}
	var missing, extra []string
	for k := range served {
		if d.ops[k] == nil {
			missing = append(missing, k)
		}
	}
	for k := range d.ops {
		if _, ok := served[k]; !ok {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("openapi.json and the API's routes differ:\n  served but not documented: %v\n  documented but not served: %v", missing, extra)
	}

	// Each operation says what its route needs.
	for k, rt := range served {
		op := d.ops[k]
		if op == nil {
			continue
		}
		sec, _ := json.Marshal(op["security"])
		wantSec := map[string]string{"agent": `[{"agentKey":[]}]`, "admin": `[{"adminToken":[]}]`, "": `[]`}[rt.Auth]
		if string(sec) != wantSec {
			t.Errorf("%s: security %s, want %s (auth %q)", k, sec, wantSec, rt.Auth)
		}
		if scope, _ := op["x-earshot-scope"].(string); scope != string(rt.Scope) {
			t.Errorf("%s: x-earshot-scope %q, want %q", k, scope, rt.Scope)
		}
		if idem, _ := op["x-earshot-idempotency"].(string); idem != rt.Idempotency {
			t.Errorf("%s: x-earshot-idempotency %q, want %q", k, idem, rt.Idempotency)
		}
		params, _ := json.Marshal(op["parameters"])
		wantParam := map[string]string{"required": "IdempotencyKey", "optional": "IdempotencyKeyOptional"}[rt.Idempotency]
		for _, p := range []string{"IdempotencyKey", "IdempotencyKeyOptional"} {
			if has := bytes.Contains(params, []byte(`"#/components/parameters/`+p+`"`)); has != (p == wantParam) {
				t.Errorf("%s: parameter %s present %v, idempotency %q", k, p, has, rt.Idempotency)
			}
		}
		for status, need := range map[string]bool{"401": rt.Auth != "", "403": rt.Scope != ""} {
			if _, ok := jsonPointer(op, "/responses/"+status); need && !ok {
				t.Errorf("%s: no %s response documented", k, status)
			}
		}
		// The path parameters are exactly the template's.
		var tmplParams, declared []string
		for seg := range strings.SplitSeq(rt.Path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				tmplParams = append(tmplParams, strings.TrimSuffix(name, "}"))
			}
		}
		ps, _ := op["parameters"].([]any)
		for _, p := range ps {
			pm := p.(map[string]any)
			if ref, ok := pm["$ref"].(string); ok {
				r, _ := jsonPointer(d.strict, strings.TrimPrefix(ref, "#"))
				pm, _ = r.(map[string]any)
			}
			if pm["in"] == "path" {
				declared = append(declared, pm["name"].(string))
			}
		}
		slices.Sort(tmplParams)
		slices.Sort(declared)
		if !slices.Equal(tmplParams, declared) {
			t.Errorf("%s: path parameters %v declared, the path has %v", k, declared, tmplParams)
		}
	}

	// Operation ids are there and unique; every operation answers something.
	ids := map[string]string{}
	for k, op := range d.ops {
		checkOperation(t, k, op, ids)
	}
	for name, item := range d.strict["webhooks"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			checkOperation(t, "webhook "+name+" "+m, op.(map[string]any), ids)
		}
	}

	// Every reference resolves, in the document itself.
	walkJSON(d.raw, func(v any) {
		m, _ := v.(map[string]any)
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return
		}
		frag, ok := strings.CutPrefix(ref, "#")
		if !ok {
			t.Errorf("$ref %q is not local", ref)
			return
		}
		if _, ok := jsonPointer(d.raw, frag); !ok {
			t.Errorf("$ref %q does not resolve", ref)
		}
	})
	// Every component schema compiles (they are all the $defs of an empty schema).
	if _, err := d.schema(map[string]any{}); err != nil {
		t.Errorf("the component schemas: %v", err)
	}
	// The compiler does not check keywords against the meta-schema; the types at least.
	jsonTypes := []string{"object", "array", "string", "integer", "number", "boolean", "null"}
	walkJSON(d.strict, func(v any) {
		m, _ := v.(map[string]any)
		for _, root := range []any{m["schema"], m["schemas"]} {
			walkJSON(root, func(v any) {
				s, _ := v.(map[string]any)
				if typ, ok := s["type"].(string); ok && !slices.Contains(jsonTypes, typ) {
					t.Errorf("a schema of type %q", typ)
				}
			})
		}
	})
	// The webhooks carry the Standard Webhooks headers the gateway signs with.
	for _, name := range []string{"intent.received", "transaction"} {
		params, _ := json.Marshal(d.raw["webhooks"].(map[string]any)[name].(map[string]any)["post"].(map[string]any)["parameters"])
		for _, h := range []string{webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature} {
			if !bytes.Contains(params, []byte(`"name":"`+h+`"`)) {
				t.Errorf("webhook %s does not document the %s header", name, h)
			}
		}
	}
}

// checkOperation checks that an operation has a unique id and a success response.
func checkOperation(t *testing.T, k string, op map[string]any, ids map[string]string) {
	t.Helper()
	id, _ := op["operationId"].(string)
	if id == "" {
		t.Errorf("%s: no operationId", k)
	} else if other, dup := ids[id]; dup {
		t.Errorf("operationId %s is used by %s and %s", id, other, k)
	}
	ids[id] = k
	rs, _ := op["responses"].(map[string]any)
	if !slices.ContainsFunc(slices.Collect(maps.Keys(rs)), func(s string) bool { return strings.HasPrefix(s, "2") }) {
		t.Errorf("%s: no success response", k)
	}
}

// apiRoutes returns the routes the gateway serves.
func apiRoutes(t *testing.T) []api.Route {
	t.Helper()
	return start(t, gateway.Config{}).srv.API().Routes()
}

type noPrices struct{}

func (noPrices) SetPrice(string, wire.Amount) error { return errors.New("no catalogue") }

// TestOpenAPIAnswers drives a real gateway through a purchase, the agent and admin
// routes and their refusals; every answer must match the document.
func TestOpenAPIAnswers(t *testing.T) {
	d := loadOpenAPI(t)
	oa := &oaAgent{intents: make(chan agent.Intent, 16), mandates: make(chan agent.Mandate, 16)}
	g := start(t, gateway.Config{Risk: testRisk(t), CancelWindow: -1, NewAgent: func(_, key string) (gateway.Agent, error) {
		oa.key = key
		return oa, nil
	}})
	c := g.device("glasses", false)
	key, admin := oa.key, g.admin
	idem := func(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }
	lattes := func() map[string]any { return order("earshot-coffee", "latte-oat", "Oat latte", 2, 550) }

	// The served document is the embedded one.
	if a := oaWant(t, d.do(t, g, "GET", "/openapi.json", "", nil, nil), 200, ""); !bytes.Equal(a.body, api.OpenAPI) {
		t.Error("GET /openapi.json is not api.OpenAPI")
	}
	oaWant(t, d.do(t, g, "GET", "/.well-known/jwks.json", "", nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/v1/me", key, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/v1/me", "", nil, nil), 401, "unauthorized")
	oaWant(t, d.do(t, g, "GET", "/v1/me", "esk_nope", nil, nil), 401, "unauthorized")
	oaWant(t, d.do(t, g, "GET", "/v1/users", key, nil, nil), 409, "embedded_agent")
	oaWant(t, d.do(t, g, "POST", "/v1/enroll", "", nil, map[string]any{"code": "AAAA-AAAA", "public_key": "x", "proof": "x", "kind": "glasses"}), 400, "bad_request")

	// An intent, answered with a purchase the user approves; redeemed once; settled.
	if _, err := c.Say(t.Context(), "buy two oat lattes"); err != nil {
		t.Fatal(err)
	}
	in := oaRecv(t, oa.intents, "intent")
	body := lattes()
	body["tx"] = in.Tx
	oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", key, nil,
		fmt.Sprintf(`{"tx":%q,"merchant":{"id":"earshot-coffee","name":"Earshot Coffee"},"items":[{"sku":"latte-oat","name":"Oat latte","qty":2,"unit_amount":550}],"total":1100.0,"currency":"USD"}`, in.Tx)),
		422, "bad_amount")
	if a := oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", key, nil, body), 201, ""); a.str("state") != "prompted" {
		t.Fatalf("purchase request: %s", a.body)
	}
	cr := next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	for state := "prompted"; state != "mandated"; {
		a := oaWant(t, d.do(t, g, "GET", "/v1/transactions/"+in.Tx+"?wait=10&state="+state, key, nil, nil), 200, "")
		if a.str("state") == state {
			t.Fatalf("no change from %s within 10s", state)
		}
		state = a.str("state")
	}
	m := oaRecv(t, oa.mandates, "mandate")
	oaWant(t, d.do(t, g, "GET", "/v1/mandates/"+m.ID, key, nil, nil), 200, "")
	pay := map[string]any{"mandate": m.Token, "amount": 1100, "currency": "USD", "payee": "earshot-coffee"}
	oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, nil, pay), 400, "idempotency_key_required")
	paid := oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, idem("pay-"+m.ID), pay), 201, "")
	checkDriftFails(t, d, paid.body)
	if a := oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, idem("pay-"+m.ID), pay), 200, ""); a.header.Get("Idempotent-Replayed") != "true" {
		t.Error("a replayed redemption without Idempotent-Replayed")
	}
	less := map[string]any{"mandate": m.Token, "amount": 1000, "currency": "USD", "payee": "earshot-coffee"}
	oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, idem("pay-"+m.ID), less), 422, "idempotency_conflict")
	// The gateway settles due payments itself, so a second redemption meets one of two.
	if a := oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, idem("again-"+m.ID), pay), 409, ""); a.str("code") != "already_redeemed" && a.str("code") != "already_settled" {
		t.Fatalf("second redemption: %s", a.body)
	}
	oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+in.Tx+"/settle", key, nil, nil), 400, "idempotency_key_required")
	if a := oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+in.Tx+"/settle", key, idem("settle-"+in.Tx), nil), 200, ""); a.str("state") != "settled" {
		t.Fatalf("settle: %s", a.body)
	}
	oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+in.Tx+"/cancellation", key, idem("cancel-"+in.Tx), map[string]any{"accept": true}), 409, "not_cancelling")
	oaWant(t, d.do(t, g, "GET", "/v1/transactions/"+in.Tx, key, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+in.Tx+"/reject", key, nil, map[string]any{}), 409, "tx_state")

	// An intent the agent rejects.
	if _, err := c.Say(t.Context(), "sing me a song"); err != nil {
		t.Fatal(err)
	}
	in2 := oaRecv(t, oa.intents, "intent")
	if a := oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+in2.Tx+"/reject", key, nil,
		map[string]any{"code": "not_understood", "reason": "I can only shop."}), 200, ""); a.str("state") != "rejected" {
		t.Fatalf("reject: %s", a.body)
	}

	// A purchase the agent starts itself, revoked before it is paid.
	started := lattes()
	started["user"] = "alice"
	oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", key, nil, started), 400, "idempotency_key_required")
	tx3 := oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", key, idem("start-1"), started), 201, "").str("tx")
	if a := oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", key, idem("start-1"), started), 201, ""); a.str("tx") != tx3 || a.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed start: %s %v", a.body, a.header)
	}
	cr = next(t, c, wire.TypeConfirmRequest).ConfirmRequest
	if err := c.Confirm(t.Context(), cr, wire.DecisionApprove, wire.MethodTap); err != nil {
		t.Fatal(err)
	}
	m3 := oaRecv(t, oa.mandates, "mandate")
	if a := oaWant(t, d.do(t, g, "POST", "/v1/transactions/"+tx3+"/revoke", key, idem("revoke-"+tx3), map[string]any{"reason": "out of stock"}), 200, ""); a.str("state") != "revoked" {
		t.Fatalf("revoke: %s", a.body)
	}
	pay["mandate"] = m3.Token
	oaWant(t, d.do(t, g, "POST", "/v1/redemptions", key, idem("pay-"+m3.ID), pay), 410, "revoked")

	// Refusals of the agent routes.
	oaWant(t, d.do(t, g, "GET", "/v1/transactions/tx_nope", key, nil, nil), 404, "unknown_tx")
	oaWant(t, d.do(t, g, "GET", "/v1/transactions/"+in.Tx+"?wait=99", key, nil, nil), 400, "bad_request")
	oaWant(t, d.do(t, g, "GET", "/v1/mandates/nope", key, nil, nil), 404, "not_found")
	oaWant(t, d.do(t, g, "POST", "/v1/notifications", key, map[string]string{"Content-Type": "text/plain"}, map[string]any{"user": "alice", "text": "hi"}), 415, "")
	oaWant(t, d.do(t, g, "POST", "/v1/notifications", key, nil, map[string]any{"user": "alice", "tx": in.Tx, "text": "Your lattes are ready."}), 202, "")
	oaWant(t, d.do(t, g, "POST", "/v1/notifications", key, nil, map[string]any{"user": "bob", "text": "Hello."}), 409, "no_device")

	// The event stream, and resuming it.
	evs := d.events(t, g, key, 0, func(e sseEvent) bool {
		var te agent.TxEvent
		return json.Unmarshal(e.ev.Data, &te) == nil && te.Tx == tx3 && te.State == wire.TxCancelled
	})
	var types []string
	for _, e := range evs {
		types = append(types, e.ev.Type)
	}
	t.Logf("event types: %v", types)
	for _, typ := range []string{"intent.received", "transaction.prompted", "transaction.mandated", "transaction.settled", "transaction.rejected"} {
		if !slices.Contains(types, typ) {
			t.Errorf("the event stream has no %s: %v", typ, types)
		}
	}
	resumed := d.events(t, g, key, evs[1].ev.Seq, func(sseEvent) bool { return true })
	if resumed[0].ev.Seq != evs[1].ev.Seq+1 {
		t.Errorf("resuming after %d gave seq %d first", evs[1].ev.Seq, resumed[0].ev.Seq)
	}
	oaWant(t, d.do(t, g, "GET", "/v1/events", key, map[string]string{"Last-Event-ID": "x"}, nil), 400, "bad_request")

	// An external agent: created, linked, refused what its scopes do not allow.
	hook := newHookSink(t)
	oaWant(t, d.do(t, g, "POST", "/admin/v1/agents", "", nil, map[string]any{"name": "x"}), 401, "unauthorized")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/agents", admin, nil, map[string]any{"name": ""}), 400, "bad_request")
	created := oaWant(t, d.do(t, g, "POST", "/admin/v1/agents", admin, nil,
		map[string]any{"name": "Corner Shop", "scopes": []string{"purchase"}, "webhook_url": hook}), 201, "")
	ext, extKey := created.str("agent"), created.str("api_key")
	if !strings.HasPrefix(extKey, "esk_") || !strings.HasPrefix(created.str("webhook_secret"), "whsec_") {
		t.Fatalf("created agent: %s", created.body)
	}
	oaWant(t, d.do(t, g, "GET", "/admin/v1/agents", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/v1/me", extKey, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/v1/users", extKey, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "POST", "/v1/notifications", extKey, nil, map[string]any{"user": "alice", "text": "Hello."}), 403, "insufficient_scope")
	oaWant(t, d.do(t, g, "GET", "/v1/events", extKey, nil, nil), 403, "insufficient_scope")
	oaWant(t, d.do(t, g, "POST", "/v1/purchase-requests", extKey, idem("ext-1"), started), 404, "not_found")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/users/alice/agents", admin, nil, map[string]any{"agent": ext}), 201, "")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/users/alice/agents", admin, nil, map[string]any{"agent": "agt_nope"}), 404, "unknown_agent")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/users/alice/agents", admin, nil, nil), 200, "")
	if a := oaWant(t, d.do(t, g, "GET", "/v1/users", extKey, nil, nil), 200, ""); !strings.Contains(string(a.body), `"usr_alice"`) {
		t.Errorf("linked users: %s", a.body)
	}
	if a := oaWant(t, d.do(t, g, "PUT", "/admin/v1/agents/"+ext+"/webhook", admin, nil, map[string]any{"url": hook + "/v2", "rotate_secret": true}), 200, ""); a.str("webhook_secret") == "" {
		t.Errorf("rotated webhook secret not shown: %s", a.body)
	}
	newKey := oaWant(t, d.do(t, g, "POST", "/admin/v1/agents/"+ext+"/keys", admin, nil, nil), 201, "").str("api_key")
	oaWant(t, d.do(t, g, "GET", "/v1/me", extKey, nil, nil), 401, "unauthorized")
	oaWant(t, d.do(t, g, "GET", "/v1/me", newKey, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "DELETE", "/admin/v1/users/alice/agents/"+ext, admin, nil, nil), 204, "")
	oaWant(t, d.do(t, g, "DELETE", "/admin/v1/users/alice/agents/"+ext, admin, nil, nil), 404, "not_linked")
	if a := oaWant(t, d.do(t, g, "POST", "/admin/v1/agents/"+ext+"/revoke", admin, nil, nil), 200, ""); a.obj["revoked"] != true {
		t.Errorf("revoked agent: %s", a.body)
	}
	oaWant(t, d.do(t, g, "POST", "/admin/v1/agents/agt_nope/revoke", admin, nil, nil), 404, "unknown_agent")

	// The operator's other routes.
	oaWant(t, d.do(t, g, "POST", "/admin/v1/pairing-codes", admin, nil, map[string]any{"user": "bob"}), 201, "")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/pairing-codes", admin, nil, map[string]any{"user": "Not A Handle!"}), 400, "bad_request")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/devices", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/devices/dev_nope/revoke", admin, nil, nil), 404, "unknown_device")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/keys", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/audit/verify", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/audit/export", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/audit/export?from=0", admin, nil, nil), 400, "bad_request")
	oaWant(t, d.do(t, g, "GET", "/admin/v1/audit/jwks", admin, nil, nil), 200, "")
	oaWant(t, d.do(t, g, "POST", "/admin/v1/keys/rotate", admin, nil, nil), 201, "")

	var unanswered []string
	for k := range d.ops {
		if !d.answered[k] {
			unanswered = append(unanswered, k)
		}
	}
	slices.Sort(unanswered)
	t.Logf("operations not driven here: %v", unanswered)
}

// TestOpenAPIPrices drives the route only the reference agent's catalogue serves.
func TestOpenAPIPrices(t *testing.T) {
	d := loadOpenAPI(t)
	g := start(t, gateway.Config{})
	oaWant(t, d.do(t, g, "PUT", "/admin/v1/catalog/prices/latte-oat", g.admin, nil, map[string]any{"amount": 500}), 200, "")
	oaWant(t, d.do(t, g, "PUT", "/admin/v1/catalog/prices/nope", g.admin, nil, map[string]any{"amount": 500}), 422, "bad_price")
	oaWant(t, d.do(t, g, "PUT", "/admin/v1/catalog/prices/latte-oat", g.admin, nil, `{"amount":5.5}`), 422, "bad_amount")
}

// checkDriftFails proves the validator catches drift on a real answer: a renamed
// member and money written as a float must both fail.
func checkDriftFails(t *testing.T, d *oaDoc, redemption []byte) {
	t.Helper()
	node, _ := jsonPointer(d.ops["POST /v1/redemptions"], "/responses/201/content/application~1json/schema")
	schema := node.(map[string]any)
	if err := d.validate(schema, redemption); err != nil {
		t.Fatalf("the real answer fails already: %v", err)
	}
	for name, mutated := range map[string][]byte{
		"renamed member": bytes.Replace(redemption, []byte(`"redeemed_at"`), []byte(`"redeemedAt"`), 1),
		"float money":    bytes.Replace(redemption, []byte(`"amount":1100`), []byte(`"amount":1100.0`), 1),
		"string money":   bytes.Replace(redemption, []byte(`"amount":1100`), []byte(`"amount":"1100"`), 1),
	} {
		if bytes.Equal(mutated, redemption) {
			t.Fatalf("%s: the answer %s has nothing to change", name, redemption)
		}
		if err := d.validate(schema, mutated); err == nil {
			t.Errorf("%s: the validator took %s", name, mutated)
		}
	}
}

// newHookSink is a webhook endpoint on loopback that takes every delivery, so an
// agent's webhook URL never points off the machine.
func newHookSink(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // drained so the connection is reused
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks"
}
