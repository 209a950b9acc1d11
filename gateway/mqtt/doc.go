// Package mqtt is the MQTT 3.1.1 transport. Devices publish envelopes to their uplink
// topic and receive theirs on their downlink topic (the layout is in device/wire's
// topics.go and docs/protocol.md); the package maps those topics onto session cores,
// one session.Conn per device hello.
//
// Two brokers sit behind one Bridge:
//
//   - Embedded (the default): a mochi-mqtt broker in the gateway process. Its hook
//     authenticates CONNECT (username = device id, password = a device token, checked
//     by the registry) and enforces the per-device ACL on publish, on subscribe filters
//     (wildcards and $share/... included) and on every delivery. The gateway talks to
//     it through mochi's inline client, without a socket.
//   - External: any MQTT 3.1.1 broker (Mosquitto, NATS's MQTT listener), which must
//     authenticate devices with earshot tokens and enforce the same ACL
//     (docs/deploy-mqtt.md; the Mosquitto plugin calls AuthHandler). The gateway is a
//     paho backend client with a persistent session that subscribes to every device's
//     uplink and acknowledges an uplink message only after the core has handled it.
//
// Uplink messages are handled by a fixed set of shard workers, a device always on the
// same shard, so each device's messages are handled in order, one at a time, as the
// core requires, while devices proceed in parallel. Shard queues are bounded: a full
// queue blocks the broker's delivery (backpressure), it never drops.
//
// Over MQTT the device's link outlives any one session, so presence comes from status
// messages, not from sockets: a hello attaches a new session.Conn (the previous one of
// the device is replaced silently: its topic is the same), and an offline status (the
// device's will, or its clean goodbye) detaches it, unless it is stale: a device tags
// its online status and its will with the same per-connection epoch, and an offline
// for an older epoch than the newest online is ignored. The gateway publishes its own
// retained status with an epoch that changes on every (re)connection to the broker;
// devices send hello again when it changes, which is how sessions come back after a
// gateway or broker restart. Downlink durability is the core's outbox, not the
// broker's queue: what the broker loses is re-sent after the device's next hello.
//
// Only this package imports the MQTT broker and, on the gateway side, paho.
package mqtt
