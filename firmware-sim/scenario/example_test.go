package scenario_test

import (
	"fmt"

	"github.com/earshot/earshot/firmware-sim/scenario"
)

func ExampleParse() {
	s, err := scenario.Parse("glasses-buy-coffee.yaml", []byte(`
name: glasses-buy-coffee
device: {kind: glasses, user: alice}
steps:
  - say: "buy two oat lattes"
  - expect_prompt: {merchant: "Earshot Coffee", total: 1100, currency: USD, items: [{sku: latte-oat, qty: 2}]}
  - confirm: approve
  - expect_result: {state: redeemed}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name, s.Device.Kind, s.Device.User)
	for _, st := range s.Steps {
		fmt.Println(st.Line, st.Kind)
	}

	_, err = scenario.Parse("typo.yaml", []byte("name: typo\nsteps:\n  - say: hi\n  - expect_promt: {total: 1100}\n"))
	fmt.Println(err)
	// Output:
	// glasses-buy-coffee glasses alice
	// 5 say
	// 6 expect_prompt
	// 7 confirm
	// 8 expect_result
	// typo.yaml:4: step 2: unknown step "expect_promt" (want one of say, expect_prompt, confirm, expect_result, wait_expiry, status, expect_speech, expect_error, cancel, price, expect_no_prompt)
}
