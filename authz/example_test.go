package authz_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/authz/kv"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// terms are two oat lattes at Luckin for device dev, valid for a minute.
func terms(dev string) wire.Terms {
	nonce, _ := authz.NewNonce(nil)
	return wire.Terms{
		Tx: "tx_1", Device: dev, Session: "ses_1",
		Merchant: wire.Merchant{ID: "m_luckin", Name: "Luckin Coffee"},
		Items:    []wire.Item{{SKU: "latte-oat", Name: "Oat latte", Qty: 2, UnitAmount: 475}},
		Total:    950, Currency: "USD", Kind: wire.KindOneOff,
		ExpiresAt: now.Add(time.Minute).UnixMilli(), Nonce: nonce,
	}
}

func ExampleVerifyConfirmation() {
	dev, _ := identity.GenerateKey()
	ch, err := authz.NewChallenge(terms(dev.DeviceID()), []wire.Method{wire.MethodTap, wire.MethodPIN}, now)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The device shows the prompt, recomputes the hash, the user taps, the device signs.
	c := &wire.Confirm{Tx: "tx_1", Hash: ch.Hash, Decision: wire.DecisionApprove, Method: wire.MethodTap}
	dev.SignConfirm(c)

	err = authz.VerifyConfirmation(&ch, c, dev.DeviceID(), "ses_1", dev.Public(), now.Add(5*time.Second))
	fmt.Println("approved:", err == nil && c.Decision == wire.DecisionApprove)

	// The same confirmation two minutes later: the refusal goes to the device as is.
	err = authz.VerifyConfirmation(&ch, c, dev.DeviceID(), "ses_1", dev.Public(), now.Add(2*time.Minute))
	var we *wire.Error
	if errors.As(err, &we) {
		fmt.Println(we.Code, uint16(we.Code), "retry:", we.Retry)
	}
	// Output:
	// approved: true
	// challenge_expired 1013 retry: false
}

func ExampleKeySet_Sign() {
	key, _ := authz.GenerateSigningKey(nil, now)
	keys, _ := authz.NewKeySet(key)

	ch, _ := authz.NewChallenge(terms("dev_example"), []wire.Method{wire.MethodTap}, now)
	claims, _ := authz.ClaimsFor(&ch, "usr_1", "agent_ref", "https://gw.example", now, 10*time.Minute, nil)
	token, err := keys.Sign(claims)
	if err != nil {
		fmt.Println(err)
		return
	}

	// A verifier pins the issuer; the key comes from the kid (see KeySet.JWKS).
	got, err := keys.Verify(token, "https://gw.example", now.Add(time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Agent, got.Payee, wire.Money(got.AmountCap, got.Currency), got.Kind)

	_, err = keys.Verify(token, "https://gw.example", now.Add(time.Hour))
	fmt.Println(authz.CodeOf(err), authz.CodeOf(err).HTTPStatus())
	// Output:
	// agent_ref m_luckin USD 9.50 one_off
	// mandate_expired 410
}

func ExampleLedger_Redeem() {
	ctx := context.Background()
	key, _ := authz.GenerateSigningKey(nil, now)
	keys, _ := authz.NewKeySet(key)
	store := kv.NewMemory()
	ledger, _ := authz.NewLedger(authz.LedgerConfig{
		Store: store, Keys: keys, Issuer: "https://gw.example",
		Now: func() time.Time { return now },
	})

	// Issue: sign, and record in the gateway's transaction.
	ch, _ := authz.NewChallenge(terms("dev_example"), []wire.Method{wire.MethodTap}, now)
	claims, _ := authz.ClaimsFor(&ch, "usr_1", "agent_ref", "https://gw.example", now, 0, nil)
	token, _ := keys.Sign(claims)
	if err := store.Update(ctx, func(txn kv.Txn) error { return ledger.Record(txn, claims) }); err != nil {
		fmt.Println(err)
		return
	}

	req := authz.RedeemRequest{Agent: "agent_ref", Token: token, Amount: 950, Currency: "USD",
		Payee: "m_luckin", IdempotencyKey: "order-1"}
	red, replayed, err := ledger.Redeem(ctx, req)
	fmt.Println(red.Amount, replayed, err)

	// The agent's retry gets the same answer; a new key cannot pay twice.
	again, replayed, _ := ledger.Redeem(ctx, req)
	fmt.Println(again.ID == red.ID, replayed)
	req.IdempotencyKey = "order-2"
	_, _, err = ledger.Redeem(ctx, req)
	fmt.Println(authz.CodeOf(err))
	// Output:
	// 950 false <nil>
	// true true
	// already_redeemed
}

func ExampleLedger_RecordTip() {
	ctx := context.Background()
	key, _ := authz.GenerateSigningKey(nil, now)
	keys, _ := authz.NewKeySet(key)
	store := kv.NewMemory()
	ledger, _ := authz.NewLedger(authz.LedgerConfig{
		Store: store, Keys: keys, Issuer: "https://gw.example",
		Now: func() time.Time { return now },
	})

	// The user approved two lattes and up to USD 2.00 of tips afterwards.
	t := terms("dev_example")
	t.Conditions = &wire.Conditions{TipCap: 200}
	ch, _ := authz.NewChallenge(t, []wire.Method{wire.MethodTap}, now)
	parent, _ := authz.ClaimsFor(&ch, "usr_1", "agent_ref", "https://gw.example", now, 0, nil)
	token, _ := keys.Sign(parent)
	if err := store.Update(ctx, func(txn kv.Txn) error { return ledger.Record(txn, parent) }); err != nil {
		fmt.Println(err)
		return
	}
	if _, _, err := ledger.Redeem(ctx, authz.RedeemRequest{Agent: "agent_ref", Token: token, Amount: 950,
		Currency: "USD", Payee: "m_luckin", IdempotencyKey: "order-1"}); err != nil {
		fmt.Println(err)
		return
	}

	// "Add a dollar fifty tip": no new prompt, the parent's consent covers it.
	tip := func(tx string, amount wire.Amount) error {
		c, err := authz.TipClaims(parent, tx, amount, "https://gw.example", now, 0, nil)
		if err != nil {
			return err
		}
		return store.Update(ctx, func(txn kv.Txn) error { return ledger.RecordTip(txn, c, true) })
	}
	fmt.Println(tip("tx_tip1", 150))
	err := store.View(ctx, func(txn kv.Txn) error {
		left, err := ledger.TipAllowance(txn, parent.ID)
		fmt.Println("left:", wire.Money(left, "USD"))
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(authz.CodeOf(tip("tx_tip2", 100)))
	// Output:
	// <nil>
	// left: USD 0.50
	// over_tip_cap
}
