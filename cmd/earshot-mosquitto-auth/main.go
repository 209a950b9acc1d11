//go:build !mosquitto

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "earshot-mosquitto-auth is a Mosquitto plugin, not a program; build it with:\n"+
		"  go build -tags mosquitto -buildmode=c-shared -o bin/earshot-mosquitto-auth.so ./cmd/earshot-mosquitto-auth\n"+
		"(needs Mosquitto's headers: Debian package mosquitto-dev). See docs/deploy-mqtt.md.")
	os.Exit(2)
}
