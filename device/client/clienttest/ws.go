package clienttest

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot/earshot/device/identity"
	"github.com/earshot/earshot/device/wire"
)

// serveDevice authenticates the upgrade, then runs the device's session on the
// handler's goroutine until the connection ends.
func (g *Gateway) serveDevice(w http.ResponseWriter, r *http.Request) {
	d, status, code, detail := g.authenticate(r)
	if code != "" {
		writeProblem(w, status, code, detail)
		return
	}
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}, ReadBufferSize: 1024, WriteBufferSize: 1024}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = conn.Close() // shutting down
		return
	}
	g.handlers.Add(1)
	g.mu.Unlock()
	defer g.handlers.Done()
	defer conn.Close()
	conn.SetReadLimit(wire.MaxFrameBytes)
	wc := &wsConn{c: conn}
	if !g.hello(d, wc) {
		return
	}
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if mt == websocket.BinaryMessage {
			g.mu.Lock()
			g.audioFrameLocked(d, data)
			g.mu.Unlock()
			continue
		}
		if mt != websocket.TextMessage {
			continue
		}
		env, err := wire.Decode(data)
		if err != nil {
			g.mu.Lock()
			g.sendLocked(d, "", wire.NewError(wire.CodeBadRequest, err.Error()))
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		d.uplinks[env.Type]++
		g.uplinkLocked(d, env)
		g.mu.Unlock()
	}
	g.mu.Lock()
	if d.conn == deviceConn(wc) {
		d.conn = nil
	}
	g.mu.Unlock()
}

func (g *Gateway) authenticate(r *http.Request) (d *device, status int, code, detail string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), "bearer device token required"
	}
	claims, err := identity.ParseToken(token)
	if err != nil {
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), err.Error()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	d = g.devices[claims.Subject]
	switch {
	case d == nil:
		return nil, http.StatusUnauthorized, wire.CodeUnknownDevice.String(), "device not enrolled"
	case d.revoked:
		return nil, http.StatusForbidden, wire.CodeDeviceRevoked.String(), "device revoked"
	}
	if _, err := identity.VerifyToken(token, d.pub, g.cfg.Audience, time.Now()); err != nil {
		if errors.Is(err, identity.ErrTokenExpired) {
			return nil, http.StatusUnauthorized, wire.CodeTokenExpired.String(), err.Error()
		}
		return nil, http.StatusUnauthorized, wire.CodeInvalidToken.String(), err.Error()
	}
	if g.nonces[claims.Nonce] {
		return nil, http.StatusUnauthorized, wire.CodeTokenReplayed.String(), "token nonce already used"
	}
	g.nonces[claims.Nonce] = true
	return d, 0, "", ""
}

// hello reads the device's hello and opens the session on conn.
func (g *Gateway) hello(d *device, conn *wsConn) bool {
	_ = conn.c.SetReadDeadline(time.Now().Add(5 * time.Second)) // a failure surfaces in ReadMessage
	_, data, err := conn.c.ReadMessage()
	if err != nil {
		return false
	}
	_ = conn.c.SetReadDeadline(time.Time{}) // as above
	env, err := wire.Decode(data)
	h := new(wire.Hello)
	if err == nil {
		err = wire.DecodeBody(env, h)
	}
	if err != nil {
		conn.end(wire.CodeProtocolViolation)
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	return g.helloLocked(d, h, conn)
}

// wsConn is a device session's WebSocket.
type wsConn struct{ c *websocket.Conn }

func (w *wsConn) transport() string { return "ws" }

func (w *wsConn) write(frame []byte) error {
	_ = w.c.SetWriteDeadline(time.Now().Add(2 * time.Second)) // surfaces in WriteMessage
	return w.c.WriteMessage(websocket.TextMessage, frame)
}

func (w *wsConn) writeBinary(frame []byte) error {
	_ = w.c.SetWriteDeadline(time.Now().Add(2 * time.Second)) // surfaces in WriteMessage
	return w.c.WriteMessage(websocket.BinaryMessage, frame)
}

// end sends a close frame with the code (best effort, as a real peer) and closes the
// connection abruptly; its reader returns.
func (w *wsConn) end(code wire.Code) {
	if code != wire.CodeUnknown {
		msg := websocket.FormatCloseMessage(int(code), code.String())
		_ = w.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) // best effort
	}
	_ = w.c.NetConn().Close() // abrupt on purpose
}
