// Package sim is simulated earshot firmware: a pair of smart glasses or a coffee-shop
// kiosk that enrols with a gateway and buys things through the real device protocol,
// using the reference client (device/client).
//
// A simulated device keeps its Ed25519 key and its enrolment in a state directory, so
// it enrols once: with a pairing code it was given, or with one it asks the gateway's
// admin API for (the admin token is read from the gateway's data directory). It then
// connects over WebSocket or MQTT (Config.Transport; over MQTT to the broker the
// gateway names at GET /v1/transports unless Config.MQTT gives one), says things (Device.Say starts a Turn), waits for the prompt that answers
// them, shows it (FormatPrompt), signs the simulated user's decision and follows the
// transaction to its final state.
//
// sim is a device: it imports device/... and never gateway/....
package sim
