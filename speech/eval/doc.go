// Package eval measures a recogniser on generated speech: in-grammar commands sampled
// from the commerce grammar (fixed seed), spoken by several espeak-ng voices at several
// speeds, clean and mixed with pink noise; out-of-grammar chatter, radio sentences and
// near misses that must be rejected; and a confirm-mode set of answers against chatter.
//
// Intent accuracy is the share of in-grammar utterances that were accepted and whose
// transcript parses to the sampled intent; the false-accept rate is the share of
// out-of-grammar utterances accepted. The real-time factor is recognition time over
// audio time.
package eval
