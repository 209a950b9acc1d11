package sim_test

import (
	"fmt"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/firmware-sim/sim"
)

func ExampleFormatResult() {
	fmt.Println(sim.FormatResult(&wire.TxResult{Tx: "tx_1", State: wire.TxRedeemed, Mandate: "mnd_1", Amount: 1100, Currency: "USD"}))
	fmt.Println(sim.FormatResult(&wire.TxResult{Tx: "tx_2", State: wire.TxRejected, Code: wire.CodeNotUnderstood, Reason: "Sorry?"}))
	// Output:
	// tx tx_1: redeemed (final), mandate mnd_1, amount USD 11.00
	// tx tx_2: rejected (final), code not_understood: Sorry?
}
