// Package sim is simulated earshot firmware: a pair of smart glasses, a coffee-shop
// kiosk or the user's phone, that enrols with a gateway and buys things through the
// real device protocol, using the reference client (device/client).
//
// A simulated device keeps its Ed25519 key and its enrolment in a state directory, so
// it enrols once: with a pairing code it was given, or with one it asks the gateway's
// admin API for (the admin token is read from the gateway's data directory). It then
// connects over WebSocket, MQTT or WebRTC (Config.Transport; to the broker or WHIP
// endpoint the gateway names at GET /v1/transports unless Config.MQTT or
// Config.WebRTC gives one), says things (Device.Say starts a Turn), waits for the
// prompt that answers them, shows it (FormatPrompt), signs the simulated user's decision and follows the
// transaction to its final state, and can cancel it after the redemption
// (Purchase.Cancel, Turn.Cancel).
//
// Step-up: a prompt that needs the phone (glasses, above the gateway's limit) shows
// its binding code, and the glasses sign nothing for an approval: the user approves on
// the phone, and the glasses wait for the result. A phone Device (KindPhone, enrolled
// to the same user) sets the user's PIN (SetPIN) and runs an approval loop
// (ServePhone): it shows every prompt it gets with its code (FormatApproval) and
// approves or declines it. A kiosk answers a PIN prompt with Config.PIN.
//
// sim is a device: it imports device/... and never gateway/....
package sim
