package llmagent

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

// The tools the model is offered. Their results are JSON objects; an error result is
// {"error": "..."} with words the model can act on.
const (
	toolSearch  = "search_catalog"
	toolPropose = "propose_purchase"
	toolReject  = "reject"
)

// Bounds on what the model may ask of a tool.
const (
	// maxResults bounds the items one search returns.
	maxResults = 10
	// maxQueryBytes bounds a search query.
	maxQueryBytes = 200
	// maxReasonBytes bounds a rejection's device-visible reason.
	maxReasonBytes = 200
	// maxSummaryBytes is the longest summary the gateway takes (gateway/session).
	maxSummaryBytes = wire.MaxTextBytes / 2
	// maxPromptCatalogBytes: a catalogue summary up to this size goes into the system
	// prompt whole.
	maxPromptCatalogBytes = 4 << 10
)

var tools = []tool{
	{Type: "function", Function: functionDef{
		Name:        toolSearch,
		Description: "Search the shop catalogue. Returns matching items with their sku, merchant, sizes with prices, and options. An empty query lists everything.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"query":{"type":"string","description":"words naming the item, such as \"oat latte\""}},` +
			`"required":["query"]}`),
	}},
	{Type: "function", Function: functionDef{
		Name: toolPropose,
		Description: "Propose the purchase to the user, who approves or declines it on their device. " +
			"Use skus from search_catalog; the shop sets the prices. Propose exactly what the user asked for, once.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"merchant":{"type":"string","description":"the merchant id of every item"},` +
			`"items":{"type":"array","minItems":1,"items":{"type":"object","properties":{` +
			`"sku":{"type":"string"},` +
			`"qty":{"type":"integer","minimum":1,"maximum":20},` +
			`"size":{"type":"string","description":"one of the item's sizes; leave out for the default"},` +
			`"options":{"type":"array","items":{"type":"string"},"description":"options the user asked for, from the item's options"}},` +
			`"required":["sku","qty"]}}},` +
			`"required":["merchant","items"]}`),
	}},
	{Type: "function", Function: functionDef{
		Name:        toolReject,
		Description: "Tell the user you cannot make this purchase: it is not a purchase, or the shop does not sell it.",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"reason":{"type":"string","description":"one short sentence for the user"}},` +
			`"required":["reason"]}`),
	}},
}

// index is the catalogue as the tools read it.
type index struct {
	cat   *refagent.Catalog
	items []*refagent.Item // catalogue order
	bySKU map[string]*refagent.Item
	// prompt is the catalogue summary for the system prompt, or "" when it is too long.
	prompt string
}

func newIndex(cat *refagent.Catalog) *index {
	x := &index{cat: cat, bySKU: map[string]*refagent.Item{}}
	var b strings.Builder
	for _, m := range cat.Merchants() {
		fmt.Fprintf(&b, "Merchant %s (%s, prices in %s):\n", m.ID, m.Name, m.Currency)
		for _, it := range m.Items {
			x.items = append(x.items, it)
			x.bySKU[it.SKU] = it
			fmt.Fprintf(&b, "- %s: %s, %s", it.SKU, it.Name, wire.Money(it.Price, m.Currency))
			if len(it.Sizes) > 0 {
				names := make([]string, len(it.Sizes))
				for i, s := range it.Sizes {
					names[i] = s.Name
				}
				fmt.Fprintf(&b, " (%s size); sizes %s", it.DefaultSize(), strings.Join(names, ", "))
			}
			if len(it.Options) > 0 {
				fmt.Fprintf(&b, "; options %s", strings.Join(it.Options, ", "))
			}
			b.WriteString("\n")
		}
	}
	if b.Len() <= maxPromptCatalogBytes {
		x.prompt = b.String()
	}
	return x
}

// systemPrompt tells the model its job and its limits. It holds the catalogue when
// that is short, and nothing about the user, the device or any credential.
func (x *index) systemPrompt() string {
	var b strings.Builder
	b.WriteString("You are a shopping assistant behind a voice interface. The user said one sentence. " +
		"If it asks to buy items the shop sells, find them with search_catalog and call propose_purchase once " +
		"with exactly the items, quantities, sizes and options the user said: never more, never other items. " +
		"A quantity not said is 1; a size not said is the default. The user approves every purchase on their device, " +
		"and the shop sets the prices. If the sentence is not a purchase, or the shop does not sell what was asked for, " +
		"call reject with one short sentence for the user. Do not ask questions: the user cannot answer.\n")
	if x.prompt != "" {
		b.WriteString("\nThe catalogue:\n")
		b.WriteString(x.prompt)
	}
	return b.String()
}

// searchResult is one item in a search_catalog result.
type searchResult struct {
	SKU          string       `json:"sku"`
	Name         string       `json:"name"`
	Merchant     string       `json:"merchant"`
	MerchantName string       `json:"merchant_name"`
	Currency     string       `json:"currency"`
	Price        wire.Amount  `json:"price"`
	PriceText    string       `json:"price_text"`
	Sizes        []sizeResult `json:"sizes,omitempty"`
	Options      []string     `json:"options,omitempty"`
}

type sizeResult struct {
	Size      string      `json:"size"`
	Price     wire.Amount `json:"price"`
	PriceText string      `json:"price_text"`
	Default   bool        `json:"default,omitempty"`
}

// search returns the items whose name, sku, aliases or merchant name share the most
// words with query (an empty query: every item), best first, at most maxResults.
func (x *index) search(query string) []searchResult {
	words := strings.Fields(strings.ToLower(truncate(query, maxQueryBytes)))
	type hit struct {
		it    *refagent.Item
		score int
		pos   int
	}
	var hits []hit
	for i, it := range x.items {
		score := 0
		if len(words) > 0 {
			score = matchScore(it, words)
			if score == 0 {
				continue
			}
		}
		hits = append(hits, hit{it, score, i})
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.pos, b.pos)) })
	out := make([]searchResult, 0, min(len(hits), maxResults))
	for _, h := range hits[:min(len(hits), maxResults)] {
		out = append(out, describe(h.it))
	}
	return out
}

// matchScore counts the query words found in the item's words (a plural "lattes"
// matches "latte").
func matchScore(it *refagent.Item, words []string) int {
	m := it.Merchant()
	hay := map[string]bool{}
	for _, s := range append([]string{it.SKU, it.Name, m.Name, m.ID}, it.Aliases...) {
		for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ' ' || r == '-' || r == '_' }) {
			hay[w] = true
		}
	}
	score := 0
	for _, w := range words {
		w = strings.Trim(w, ".,;:!?\"'")
		if w == "" {
			continue
		}
		if hay[w] || hay[strings.TrimSuffix(w, "s")] || hay[strings.TrimSuffix(w, "es")] {
			score++
		}
	}
	return score
}

func describe(it *refagent.Item) searchResult {
	m := it.Merchant()
	r := searchResult{SKU: it.SKU, Name: it.Name, Merchant: m.ID, MerchantName: m.Name, Currency: m.Currency,
		Price: it.Price, PriceText: wire.Money(it.Price, m.Currency), Options: it.Options}
	def := it.DefaultSize()
	for _, s := range it.Sizes {
		p, _ := it.UnitAmount(s.Name)
		r.Sizes = append(r.Sizes, sizeResult{Size: s.Name, Price: p, PriceText: wire.Money(p, m.Currency), Default: s.Name == def})
	}
	return r
}

// proposeArgs are propose_purchase's arguments. Unknown fields (a summary, a price)
// are ignored: the agent writes the summary and sets the prices.
type proposeArgs struct {
	Merchant string        `json:"merchant"`
	Items    []proposeItem `json:"items"`
}

type proposeItem struct {
	SKU     string   `json:"sku"`
	Qty     int      `json:"qty"`
	Size    string   `json:"size"`
	Options []string `json:"options"`
}

// proposalError is why a proposal cannot be made, in words for the model.
type proposalError struct{ msg string }

func (e *proposalError) Error() string { return e.msg }

func badProposal(format string, args ...any) error {
	return &proposalError{msg: fmt.Sprintf(format, args...)}
}

// order prices the model's proposal from the catalogue: each line's sku must be the
// merchant's, its size one the item comes in, its options the item's, its quantity 1
// to refagent.MaxQty (lines of the same sku, size and options are added up first).
// The model's words never set a price.
func (x *index) order(args proposeArgs) (refagent.Order, error) {
	m, ok := x.cat.Merchant(args.Merchant)
	if !ok {
		return refagent.Order{}, badProposal("unknown merchant %q: use the merchant id search_catalog returns", truncate(args.Merchant, 64))
	}
	if len(args.Items) == 0 || len(args.Items) > wire.MaxItems {
		return refagent.Order{}, badProposal("%d items: propose 1 to %d", len(args.Items), wire.MaxItems)
	}
	var lines []refagent.Line
	for i, pi := range args.Items {
		it, ok := x.bySKU[pi.SKU]
		if !ok {
			return refagent.Order{}, badProposal("items[%d]: unknown sku %q: use a sku search_catalog returns", i, truncate(pi.SKU, 64))
		}
		if it.Merchant() != m {
			return refagent.Order{}, badProposal("items[%d]: %s is sold by %s, not %s: one merchant per purchase", i, it.SKU, it.Merchant().ID, m.ID)
		}
		if pi.Qty < 1 || pi.Qty > refagent.MaxQty {
			return refagent.Order{}, badProposal("items[%d]: qty %d: want 1 to %d", i, pi.Qty, refagent.MaxQty)
		}
		l := refagent.Line{Item: it, Qty: pi.Qty, Size: it.DefaultSize()}
		if pi.Size != "" {
			size := strings.ToLower(strings.TrimSpace(pi.Size))
			if _, ok := it.UnitAmount(size); !ok || len(it.Sizes) == 0 {
				return refagent.Order{}, badProposal("items[%d]: %s has no size %q%s", i, it.SKU, truncate(pi.Size, 32), sizesOf(it))
			}
			l.Size = size
		}
		for _, o := range pi.Options {
			o = strings.ToLower(strings.TrimSpace(o))
			if !slices.Contains(it.Options, o) {
				return refagent.Order{}, badProposal("items[%d]: %s has no option %q%s", i, it.SKU, truncate(o, 32), optionsOf(it))
			}
			if !slices.Contains(l.Options, o) {
				l.Options = append(l.Options, o)
			}
		}
		slices.SortFunc(l.Options, func(a, b string) int {
			return slices.Index(it.Options, a) - slices.Index(it.Options, b)
		})
		if j := slices.IndexFunc(lines, func(o refagent.Line) bool {
			return o.Item == l.Item && o.Size == l.Size && slices.Equal(o.Options, l.Options)
		}); j >= 0 {
			lines[j].Qty += l.Qty
		} else {
			lines = append(lines, l)
		}
	}
	var total int64
	for _, l := range lines {
		if l.Qty > refagent.MaxQty {
			return refagent.Order{}, badProposal("%d of %s: want at most %d", l.Qty, l.Item.SKU, refagent.MaxQty)
		}
		total += int64(l.Amount())
	}
	if total <= 0 || total > int64(wire.MaxAmount) {
		return refagent.Order{}, badProposal("a total of %d minor units is out of range", total)
	}
	return refagent.Order{Merchant: m, Lines: lines}, nil
}

func sizesOf(it *refagent.Item) string {
	if len(it.Sizes) == 0 {
		return " (it comes in one size: leave size out)"
	}
	names := make([]string, len(it.Sizes))
	for i, s := range it.Sizes {
		names[i] = s.Name
	}
	return " (sizes: " + strings.Join(names, ", ") + ")"
}

func optionsOf(it *refagent.Item) string {
	if len(it.Options) == 0 {
		return " (it has no options)"
	}
	return " (options: " + strings.Join(it.Options, ", ") + ")"
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
