package authz_test

import (
	"testing"
	"time"

	"github.com/earshot/earshot/authz"
	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

func TestVerifyApproval(t *testing.T) {
	glasses, _ := identity.GenerateKey()
	phone, _ := identity.GenerateKey()
	other, _ := identity.GenerateKey()
	now := time.UnixMilli(1773480600000)
	terms := wire.Terms{
		Tx: "tx_big", Device: glasses.DeviceID(), Session: "ses_1",
		Merchant: wire.Merchant{ID: "earshot-outfitters", Name: "Earshot Outfitters"},
		Items:    []wire.Item{{SKU: "jacket", Name: "Jacket", Qty: 1, UnitAmount: 12000}},
		Total:    12000, Currency: "USD", Kind: wire.KindOneOff, ExpiresAt: now.Add(time.Minute).UnixMilli(), Nonce: "n_1",
	}
	ch, err := authz.NewChallenge(terms, []wire.Method{wire.MethodPhone}, now)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k *identity.Key, d wire.Decision, m wire.Method) *wire.Confirm {
		c := &wire.Confirm{Tx: ch.Terms.Tx, Hash: ch.Hash, Decision: d, Method: m}
		k.SignConfirm(c)
		return c
	}
	tests := []struct {
		name     string
		key      *identity.Key
		approver string
		cf       *wire.Confirm
		at       time.Time
		want     wire.Code
	}{
		{"phone approves", phone, phone.DeviceID(), sign(phone, wire.DecisionApprove, wire.MethodPhone), now, 0},
		{"phone declines by tap", phone, phone.DeviceID(), sign(phone, wire.DecisionDecline, wire.MethodTap), now, 0},
		{"phone approves by tap", phone, phone.DeviceID(), sign(phone, wire.DecisionApprove, wire.MethodTap), now, wire.CodeMethodNotAllowed},
		{"the glasses approve for themselves", glasses, glasses.DeviceID(), sign(glasses, wire.DecisionApprove, wire.MethodPhone), now, wire.CodeWrongDevice},
		{"another key", other, phone.DeviceID(), sign(other, wire.DecisionApprove, wire.MethodPhone), now, wire.CodeWrongDevice},
		{"signed by another device", phone, phone.DeviceID(), sign(other, wire.DecisionApprove, wire.MethodPhone), now, wire.CodeBadSignature},
		{"too late", phone, phone.DeviceID(), sign(phone, wire.DecisionApprove, wire.MethodPhone), now.Add(time.Minute), wire.CodeChallengeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.VerifyApproval(&ch, tt.cf, tt.approver, tt.key.Public(), tt.at)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("VerifyApproval: %v", err)
				}
				return
			}
			we, ok := err.(*wire.Error)
			if !ok || we.Code != tt.want {
				t.Fatalf("VerifyApproval = %v, want %s", err, tt.want)
			}
		})
	}
}
