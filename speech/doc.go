// Package speech holds earshot's audio layer: the canonical audio format
// (16 kHz mono signed 16-bit samples in 20 ms frames), PCM and WAV codecs, a
// streaming polyphase resampler, test noise, and an endpointer (a pure-Go
// voice activity detector with an end-of-speech detector).
//
// The flow for one utterance is: device audio (Opus or PCM at any supported
// rate) -> [Resampler] to 16 kHz -> [Endpointer.Push] until it reports
// [EventEnd], [EventCap] or [EventNoSpeech] -> [Endpointer.Speech] -> a
// recogniser. Subpackages hold the Opus decoder (speech/opus), text to speech
// (speech/tts) and the recognisers.
//
// Nothing here is safe for concurrent use unless it says so: a Resampler or an
// Endpointer belongs to one stream.
package speech
