package grammar_test

import (
	"fmt"

	"github.com/earshot/earshot/speech/grammar"
)

func Example() {
	g, err := grammar.Build(grammar.Source{Items: []grammar.Item{
		{SKU: "latte-oat", Name: "Oat latte", Aliases: []string{"oat milk latte"}, Sizes: []string{"small", "large"},
			Options: []string{"iced", "extra shot"}, Currency: "USD"},
		{SKU: "socks", Name: "Running socks", Unit: "pair", Currency: "USD"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, text := range []string{
		"Can I get two large oat lattes with an extra shot, please?",
		"a pair of running socks when it drops under $12.50",
		"add a two dollar tip",
		"play some music",
	} {
		in, err := g.Parse(text)
		fmt.Println(in, err)
	}
	fmt.Println(grammar.ParseAnswer("one two three four"))
	// Output:
	// buy 2 latte-oat[large,extra shot] <nil>
	// buy 1 socks under 1250 <nil>
	// tip 200 <nil>
	// unknown grammar: not understood: unknown word "play"
	// pin 1234 <nil>
}
