package speech_test

import (
	"fmt"
	"math"
	"time"

	"github.com/earshot/earshot/speech"
)

func ExampleEndpointer() {
	// A device sends 48 kHz audio: quiet noise, half a second of a loud
	// 300 Hz buzz standing in for speech, then quiet noise again.
	noise := speech.WhiteNoise(48000*2, 1)
	audio48 := make([]int16, len(noise))
	for i := range audio48 {
		v := float64(noise[i]) / 50
		if i >= 24000 && i < 48000 {
			v += 8000 * math.Sin(2*math.Pi*300*float64(i)/48000)
		}
		audio48[i] = int16(v)
	}

	rs, err := speech.NewResampler(48000, speech.Rate)
	if err != nil {
		fmt.Println(err)
		return
	}
	ep := speech.NewEndpointer(speech.ConfirmProfile)
	var pcm []int16
	for i := 0; i < len(audio48); i += 960 { // 20 ms packets
		pcm = rs.Process(pcm[:0], audio48[i:i+960])
		if ev := ep.Push(pcm); ev != speech.EventNone {
			fmt.Println(ep.Elapsed().Round(time.Millisecond), ev)
		}
	}
	fmt.Println("utterance", ep.SpeechStart(), "to", ep.SpeechEnd(), "with", len(ep.Speech()), "samples")
	// Output:
	// 558ms speech-start
	// 1.478s end
	// utterance 500ms to 1.01s with 14560 samples
}
