package refagent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

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
