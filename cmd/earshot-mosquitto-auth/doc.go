// Command earshot-mosquitto-auth is a Mosquitto 2.0 plugin (plugin API version 5)
// that authenticates MQTT clients for an earshot gateway running in external-broker
// mode: the gateway user with the broker secret, devices with a device token that
// the gateway verifies over HTTP. See docs/deploy-mqtt.md; the decisions themselves
// are in package brokerauth.
//
// It is a shared object, not a program. Build it with Mosquitto's headers (Debian:
// mosquitto-dev) installed:
//
//	go build -tags mosquitto -buildmode=c-shared -o bin/earshot-mosquitto-auth.so ./cmd/earshot-mosquitto-auth
//
// and load it from mosquitto.conf:
//
//	plugin /usr/local/lib/earshot-mosquitto-auth.so
//	plugin_opt_url http://127.0.0.1:8080/v1/mqtt/auth
//	plugin_opt_secret_file /etc/mosquitto/earshot.secret
//
// Without the mosquitto build tag this package builds a stub that says so, which
// keeps `go build ./...` and `go vet ./...` working on machines without the headers.
package main
