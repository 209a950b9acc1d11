package sim_test

import (
	"fmt"

	"github.com/earshot/earshot/device/client"
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

func ExampleFormatMetrics() {
	fmt.Println(sim.FormatSpeech(&wire.SpeechResult{Outcome: wire.SpeechAccepted, Text: "two oat lattes"}))
	fmt.Println(sim.FormatSpeech(&wire.SpeechResult{Outcome: wire.SpeechAccepted, Text: "confirm", Answer: wire.AnswerApprove}))
	fmt.Println(sim.FormatSpeech(&wire.SpeechResult{Outcome: wire.SpeechNotUnderstood, Reason: "Sorry?"}))
	fmt.Println(sim.FormatPromptAudio(&client.PromptSpeech{PCM: make([]int16, 51200)}))
	fmt.Println(sim.FormatMetrics(&wire.TurnMetrics{Recognizer: "pocketsphinx", SpeechMS: 1420, FinalMS: 85, AgentMS: 110, PromptMS: 140, FirstAudio: 151}))
	// Output:
	// heard "two oat lattes" (accepted)
	// heard "confirm" (approve)
	// heard nothing (not_understood): Sorry?
	// (spoken prompt: 3.2 s)
	// turn: 1.42 s of speech; after its end: final 85 ms, agent 110 ms, prompt 140 ms, first audio 151 ms (pocketsphinx)
}

func ExampleFormatError() {
	fmt.Println(sim.FormatError(&wire.Error{Code: wire.CodeBadPIN, Message: "wrong PIN: 2 tries left", Tx: "tx_1"}))
	fmt.Println(sim.FormatError(&wire.Error{Code: wire.CodeNotCancellable, Message: "the cancel window is over"}))
	// Output:
	// error bad_pin (tx tx_1): wrong PIN: 2 tries left
	// error not_cancellable: the cancel window is over
}
