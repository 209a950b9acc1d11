package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/earshot/earshot/device/client"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// A device enrols once with the pairing code its user created, then connects, says
// what the user wants, shows the prompt and sends the user's signed approval.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := buyCoffee(ctx, "http://127.0.0.1:8080", "ABCD-EFGH"); err != nil {
		fmt.Println("error:", err)
	}
}

func buyCoffee(ctx context.Context, gateway, pairingCode string) error {
	key, err := identity.LoadOrCreateKey("device.key")
	if err != nil {
		return err
	}
	en, err := client.Enroll(ctx, gateway, key, pairingCode, "glasses", "Alice's glasses")
	if err != nil {
		return err
	}
	// WebSocket, or the gateway's MQTT broker when it has one: nothing else changes.
	tr, err := client.Discover(ctx, gateway)
	if err != nil {
		return err
	}
	url := tr.WS
	if tr.MQTT != "" {
		url = tr.MQTT
	}
	c, err := client.Dial(ctx, client.Config{URL: url, Key: key, Audience: en.Audience, Reconnect: true})
	if err != nil {
		return err
	}
	defer c.Close()

	if _, err := c.Say(ctx, "buy two oat lattes"); err != nil {
		return err
	}
	for ev := range c.Events() {
		switch {
		case ev.ConfirmRequest != nil:
			req := ev.ConfirmRequest
			fmt.Println(req.Text, wire.Money(req.Terms.Total, req.Terms.Currency))
			// The user taps to approve; Confirm checks the hash before it signs.
			if err := c.Confirm(ctx, req, wire.DecisionApprove, wire.MethodTap); err != nil {
				return err
			}
		case ev.TxResult != nil && ev.TxResult.State.Final():
			fmt.Println("final state:", ev.TxResult.State)
			return nil
		case ev.Error != nil:
			return ev.Error
		}
	}
	return client.ErrDisconnected
}

// The user's phone approves the purchases of the user's other devices that need it:
// it shows the terms and the binding code (the one the glasses show), and signs with
// its own key.
func ExampleClient_Approve() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := identity.LoadOrCreateKey("phone.key")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Enrolled before with client.Enroll(ctx, gateway, key, code, "phone", "Alice's phone").
	c, err := client.Dial(ctx, client.Config{URL: "ws://127.0.0.1:8080/v1/device", Key: key, Audience: "earshot", Reconnect: true})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	for ev := range c.Events() {
		if req := ev.ConfirmRequest; req != nil {
			fmt.Printf("%s\ncode %s: approve?\n", req.Text, req.Binding)
			// The user compared the code and tapped approve; Approve checks the hash
			// and the code before it signs.
			if err := c.Approve(ctx, req, wire.DecisionApprove); err != nil {
				fmt.Println("refused:", err)
			}
		}
	}
}
