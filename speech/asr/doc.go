// Package asr puts the recognisers of spoken commands and answers behind one interface.
//
//   - Text: the device ran its own ASR and sent the transcript; it is accepted iff it
//     parses in the grammar of the mode.
//   - OpenAI: an OpenAI-compatible transcription service (POST /v1/audio/transcriptions);
//     a free transcript is accepted iff it parses, which rejects out-of-grammar speech.
//   - Sphinx: PocketSphinx decoding the commerce grammar on the gateway (build tag
//     pocketsphinx). A grammar decoder maps any speech onto some in-grammar sentence, so
//     Sphinx rejects out-of-grammar speech with several signals combined (see sphinx.go).
//
// A Result is Accepted only when the transcript parses in the grammar of the mode and
// the recogniser is confident enough; otherwise Reject says why.
package asr
