// Package grammar is the spoken commerce grammar. Built from the agent's catalogue
// (a Source), one Grammar gives the recogniser its JSGF grammars and the gateway a
// strict parser for the same language:
//
//   - CommandJSGF is the command grammar (public rule <command>): buys of one or more
//     lines ("can I get two large oat lattes with an extra shot and a croissant"),
//     at a price target ("a pair of black leggings when it drops under ninety
//     dollars") or with a tip ("... and a one dollar tip"); tips ("add a two dollar
//     tip"); status ("where is my order"); cancel ("cancel my order").
//   - ConfirmJSGF is the small answer grammar (public rule <answer>): yes, no, repeat
//     and PINs of 4 to 8 digits.
//   - Parse and ParseAnswer turn a transcript into an Intent or an answer. They accept
//     exactly the language of the JSGF for lower-case word input, and also what a cloud
//     recogniser writes: capitals, punctuation, digits ("2 lattes", "$89.50"), commas
//     between lines, plurals the pronunciation dictionary lacks. Every word must be
//     accounted for: "play some music", or a radio sentence that happens to contain
//     "latte", is ErrNotUnderstood.
//   - Sample and SampleAnswer draw random sentences of the grammars with their meaning,
//     for accuracy tests with synthetic speech.
//
// One tree of rules produces all of these: it is written out as JSGF, compiled into a
// Pike VM for Parse (time linear in the words, every reading in lock step) and walked
// by Sample. Actions in the tree carry the meaning (a quantity, a size, an item, an
// amount) and are left out of the JSGF.
//
// The vocabulary is chosen for a recogniser: numbers are words, a size or option is
// only heard before an item that has it (items sold alike share rules), a number of
// two or more takes the plural ("two oat lattes", "a latte"), and when
// Source.Has says the dictionary lacks a derived plural ("lattes", "cappuccinos" in
// the CMU dictionary) the singular stands in after the number. Missing reports the
// words a dictionary lacks (LoadDict reads one).
package grammar
