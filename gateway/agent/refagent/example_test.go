package refagent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/agent/refagent"
)

func ExampleCatalog_Parse() {
	cat, err := refagent.DefaultCatalog()
	if err != nil {
		fmt.Println(err)
		return
	}
	order, err := cat.Parse("can I get two oat lattes and a large americano, please")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(order.Merchant.Name)
	fmt.Println(order.Summary())
	fmt.Println(wire.Money(order.Total(), order.Merchant.Currency))

	_, err = cat.Parse("I like turtles")
	var pe *refagent.ParseError
	if errors.Is(err, refagent.ErrNotUnderstood) && errors.As(err, &pe) {
		fmt.Println(pe.Reason)
	}
	// Output:
	// Earshot Coffee
	// 2 oat lattes, 1 large americano
	// USD 15.50
	// Sorry, I can only take orders, like "two oat lattes".
}

func ExampleCatalog_ParseRequest() {
	cat, err := refagent.DefaultCatalog()
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, time.October, 1, 12, 0, 0, 0, time.UTC)
	for _, text := range []string{
		"buy the black leggings when they drop under 90 dollars",
		"two oat lattes every week for 4 weeks",
		"an espresso and add a two dollar tip",
		"add a two dollar tip",
	} {
		req, err := cat.ParseRequest(text, refagent.ParseContext{Now: now})
		var pe *refagent.ParseError
		if errors.As(err, &pe) {
			fmt.Println(pe.Reason)
			continue
		}
		switch req.Kind {
		case wire.KindPriceTarget:
			fmt.Println(req.Order.Summary(), "at most", wire.Money(req.Limit, req.Order.Merchant.Currency))
		case wire.KindRecurring:
			fmt.Println(req.Order.Summary(), "every", req.Every, req.Times, "times until", req.Until.Format("Jan 2"))
		default:
			fmt.Println(req.Order.Summary(), "then a tip of", wire.Money(req.Tip, req.Order.Merchant.Currency))
		}
	}
	// Output:
	// 1 pair of black leggings at most USD 89.99
	// 2 oat lattes every week 4 times until Oct 29
	// 1 espresso then a tip of USD 2.00
	// Sorry, there is no recent order to tip.
}

func ExampleLoadCatalog() {
	const doc = `
merchants:
  - id: corner-bakery
    name: Corner Bakery
    currency: EUR
    items:
      - sku: baguette
        name: Baguette
        price: 1.20
`
	_, err := refagent.LoadCatalog(strings.NewReader(doc))
	fmt.Println(err)
	// Output:
	// refagent: bad catalogue: merchant "corner-bakery" (line 3) item "baguette" (line 7): price (line 9): "1.20" is not an integer in minor units (write 550 for 5.50)
}

func ExampleNew() {
	a, err := refagent.New(refagent.Config{
		BaseURL: "http://127.0.0.1:8080",
		APIKey:  os.Getenv("EARSHOT_AGENT_KEY"),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()

	// ... the gateway's session core hands a its intents, mandates and outcomes ...

	cancel()
	if err := <-ran; err != nil { // Run returns once its workers have stopped
		fmt.Println(err)
	}
}
