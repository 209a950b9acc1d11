package identity_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// A device derives its id from its key, and proves it holds the key when it enrols
// with the pairing code the user was shown.
func ExampleDeviceID() {
	key, err := identity.KeyFromSeed(bytes.Repeat([]byte{0x07}, 32))
	if err != nil {
		fmt.Println(err)
		return
	}
	pub := identity.EncodePublic(key.Public())
	proof := key.EnrollProof("K7QM-3XPD")
	fmt.Println(key.DeviceID())
	fmt.Println(pub)
	fmt.Println(identity.VerifyEnrollProof(key.Public(), "K7QM-3XPD", proof))
	// Output:
	// dev_72asyextvngonlc5w2nm
	// 6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw
	// <nil>
}

// A device mints a fresh token for every connection; the gateway verifies it with the
// enrolled public key.
func ExampleKey_Token() {
	key, _ := identity.KeyFromSeed(bytes.Repeat([]byte{0x07}, 32))
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	token, err := key.Token("earshot:gw-1", now, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := identity.VerifyToken(token, key.Public(), "earshot:gw-1", now.Add(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.Subject, claims.Audience, claims.Expiry-claims.IssuedAt)
	_, err = identity.VerifyToken(token, key.Public(), "earshot:gw-1", now.Add(time.Hour))
	fmt.Println(err)
	// Output:
	// dev_72asyextvngonlc5w2nm earshot:gw-1 300
	// identity: device token expired
}

// The device signs the user's decision on a prompt; the gateway verifies it.
func ExampleKey_SignConfirm() {
	key, _ := identity.KeyFromSeed(bytes.Repeat([]byte{0x07}, 32))
	c := wire.Confirm{
		Tx:       "tx_01JPB5Q3YF8V2K7M9N4R6T0W1X",
		Hash:     "aQmQk1s6Ku6mfv4JHmpldNz_ohwAYCbK8_FvzLZpAOE",
		Decision: wire.DecisionApprove,
		Method:   wire.MethodTap,
	}
	key.SignConfirm(&c)
	fmt.Println(identity.VerifyConfirm(key.Public(), key.DeviceID(), &c))
	c.Decision = wire.DecisionDecline
	fmt.Println(identity.VerifyConfirm(key.Public(), key.DeviceID(), &c))
	// Output:
	// <nil>
	// identity: signature does not verify
}
