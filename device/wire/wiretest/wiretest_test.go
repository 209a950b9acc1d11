package wiretest_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/device/wire/wiretest"
)

func TestGoldenReturnsCopies(t *testing.T) {
	g := wiretest.Golden(wire.TypeAck)
	if len(g) == 0 {
		t.Fatal("no ack golden")
	}
	g[0] = 'X'
	if wiretest.Golden(wire.TypeAck)[0] == 'X' {
		t.Errorf("Golden returns shared memory")
	}
	all := wiretest.Goldens()
	all[wire.TypeAck][0] = 'X'
	delete(all, wire.TypePing)
	again := wiretest.Goldens()
	if again[wire.TypeAck][0] == 'X' || again[wire.TypePing] == nil {
		t.Errorf("Goldens returns shared memory")
	}
	for typ, b := range again {
		if !bytes.Equal(b, wiretest.Golden(typ)) {
			t.Errorf("Goldens()[%q] differs from Golden", typ)
		}
	}
}

func TestGoldenUnknown(t *testing.T) {
	for _, typ := range []wire.Type{"", "nope", "../testdata/ack", "testdata/ack", `..\ack`} {
		if b := wiretest.Golden(typ); b != nil {
			t.Errorf("Golden(%q) = %d bytes, want nil", typ, len(b))
		}
	}
}

func TestDeviceKey(t *testing.T) {
	seed := wiretest.DeviceSeed()
	if len(seed) != 32 || !bytes.Equal(seed, bytes.Repeat([]byte{0x07}, 32)) {
		t.Fatalf("DeviceSeed() = %x", seed)
	}
	seed[0] = 0
	if wiretest.DeviceSeed()[0] != 0x07 {
		t.Errorf("DeviceSeed returns shared memory")
	}
	k1, k2 := wiretest.DeviceKey(), wiretest.DeviceKey()
	if k1 == nil || !k1.Public().Equal(k2.Public()) {
		t.Fatalf("DeviceKey is not deterministic")
	}
	if got, want := k1.DeviceID(), "dev_72asyextvngonlc5w2nm"; got != want {
		t.Errorf("DeviceID() = %q, want %q", got, want)
	}
}

func ExampleGolden() {
	e, err := wire.Decode(wiretest.Golden(wire.TypeAck))
	if err != nil {
		fmt.Println(err)
		return
	}
	var a wire.Ack
	if err := wire.DecodeBody(e, &a); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Type, a.Seq)
	// Output: ack 42
}
