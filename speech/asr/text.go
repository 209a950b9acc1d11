package asr

import (
	"context"
	"fmt"
	"strings"

	"github.com/earshot/earshot/speech/grammar"
)

// MaxText bounds a device transcript.
const MaxText = 1024

type textRecognizer struct{ g *grammar.Grammar }

var _ Recognizer = textRecognizer{}

// NewText returns the recogniser of device-side transcripts: Request.Text is accepted
// iff it parses in the grammar of the mode (g.Parse or grammar.ParseAnswer).
func NewText(g *grammar.Grammar) Recognizer { return textRecognizer{g: g} }

func (textRecognizer) Name() string { return "text" }

func (t textRecognizer) Recognize(ctx context.Context, req Request) (Result, error) {
	if err := checkMode(req.Mode); err != nil {
		return Result{}, err
	}
	if len(req.Text) > MaxText {
		return Result{}, fmt.Errorf("%w: text of %d bytes, max %d", ErrBadRequest, len(req.Text), MaxText)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if t.g == nil {
		return Result{}, fmt.Errorf("%w: no grammar", ErrConfig)
	}
	return judge(t.g, req.Mode, strings.TrimSpace(req.Text)), nil
}

func (textRecognizer) Close() error { return nil }
