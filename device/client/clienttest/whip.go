package clienttest

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/earshot/earshot/device/wire"
)

// WHIPURL returns the WebRTC device endpoint: whip://127.0.0.1:port/v1/whip. Devices
// must allow loopback ICE candidates (client.WebRTCSettings.Loopback).
func (g *Gateway) WHIPURL() string {
	return "whip" + strings.TrimPrefix(g.srv.URL, "http") + "/v1/whip"
}

var (
	whipAPIOnce sync.Once
	whipAPI     *webrtc.API
)

// rtcAPI is the fake's pion API: loopback candidates, UDP over IPv4.
func rtcAPI() *webrtc.API {
	whipAPIOnce.Do(func() {
		var se webrtc.SettingEngine
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		var me webrtc.MediaEngine
		_ = me.RegisterDefaultCodecs() // registers built-in codecs; cannot fail
		whipAPI = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me))
	})
	return whipAPI
}

// serveWHIP answers a WHIP offer (RFC 9725, no trickle ICE) as the gateway does: the
// device's "earshot" data channel carries the events, its Opus track the microphone.
func (g *Gateway) serveWHIP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/sdp" {
		writeProblem(w, http.StatusUnsupportedMediaType, "bad_request", "Content-Type: application/sdp required")
		return
	}
	d, status, code, detail := g.authenticate(r)
	if code != "" {
		writeProblem(w, status, code, detail)
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	pc, err := rtcAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	rc := &rtcConn{g: g, d: d, pc: pc, id: newID("whip")}
	pc.OnDataChannel(rc.onDataChannel)
	pc.OnTrack(rc.onTrack)
	answer, err := func() (string, error) {
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
			return "", err
		}
		ans, err := pc.CreateAnswer(nil)
		if err != nil {
			return "", err
		}
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(ans); err != nil {
			return "", err
		}
		<-gathered
		return pc.LocalDescription().SDP, nil
	}()
	if err != nil {
		_ = pc.Close() // refused below
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = pc.Close() // shutting down
		writeProblem(w, http.StatusServiceUnavailable, "shutdown", "shutting down")
		return
	}
	if g.peers == nil {
		g.peers = map[string]*rtcConn{}
	}
	g.peers[rc.id] = rc
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/v1/whip/"+rc.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer) // a device that left is cleaned up at Close
}

// serveWHIPDelete ends a WHIP session of the authenticated device.
func (g *Gateway) serveWHIPDelete(w http.ResponseWriter, r *http.Request) {
	d, status, code, detail := g.authenticate(r)
	if code != "" {
		writeProblem(w, status, code, detail)
		return
	}
	g.mu.Lock()
	rc := g.peers[r.PathValue("id")]
	if rc == nil || rc.d != d {
		g.mu.Unlock()
		writeProblem(w, http.StatusNotFound, "not_found", "no such session")
		return
	}
	g.deletes++
	if d.conn == deviceConn(rc) {
		d.conn = nil
	}
	rc.end(wire.CodeUnknown)
	g.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// WHIPDeletes returns the number of WHIP sessions devices ended with DELETE.
func (g *Gateway) WHIPDeletes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deletes
}

// rtcConn is a device session over WebRTC. Its fields after pc are guarded by g.mu.
type rtcConn struct {
	g  *Gateway
	d  *device
	pc *webrtc.PeerConnection
	id string

	dc     *webrtc.DataChannel
	hello  bool // the first message (hello) arrived
	closed bool
}

func (rc *rtcConn) transport() string { return "webrtc" }

func (rc *rtcConn) write(frame []byte) error {
	if rc.dc == nil {
		return io.ErrClosedPipe
	}
	return rc.dc.SendText(string(frame))
}

func (rc *rtcConn) writeBinary(frame []byte) error {
	if rc.dc == nil {
		return io.ErrClosedPipe
	}
	return rc.dc.Send(frame)
}

// end sends an error event with the code (unless it is zero), as the gateway does
// instead of a close code, then closes the peer connection once the event was
// delivered (within a second). Called with g.mu held.
func (rc *rtcConn) end(code wire.Code) {
	if rc.closed {
		return
	}
	rc.closed = true
	delete(rc.g.peers, rc.id)
	var dc *webrtc.DataChannel // set when there is a final event to deliver
	if code != wire.CodeUnknown && rc.dc != nil {
		dc = rc.dc
		if f, err := wire.Encode(wire.Envelope{Device: rc.d.id, TS: time.Now().UnixMilli()}, wire.NewError(code, code.String())); err == nil {
			_ = dc.SendText(string(f)) // best effort, as a real peer
		}
	}
	rc.g.handlers.Add(1)
	go func() {
		defer rc.g.handlers.Done()
		for deadline := time.Now().Add(time.Second); dc != nil && dc.BufferedAmount() > 0 &&
			dc.ReadyState() == webrtc.DataChannelStateOpen && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		_ = rc.pc.GracefulClose() // the device notices
	}()
}

func (rc *rtcConn) onDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() != "earshot" {
		return
	}
	rc.g.mu.Lock()
	rc.dc = dc
	rc.g.mu.Unlock()
	dc.OnMessage(rc.onMessage)
	dc.OnClose(func() {
		g := rc.g
		g.mu.Lock()
		defer g.mu.Unlock()
		if rc.d.conn == deviceConn(rc) {
			rc.d.conn = nil
		}
		rc.end(wire.CodeUnknown)
	})
}

// onMessage handles one data channel message: hello first, then events and audio
// frames, as over WebSocket.
func (rc *rtcConn) onMessage(m webrtc.DataChannelMessage) {
	g, d := rc.g, rc.d
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || rc.closed {
		return
	}
	if !rc.hello {
		rc.hello = true
		env, err := wire.Decode(m.Data)
		h := new(wire.Hello)
		if err == nil {
			err = wire.DecodeBody(env, h)
		}
		if err != nil || !m.IsString {
			rc.end(wire.CodeProtocolViolation)
			return
		}
		g.helloLocked(d, h, rc)
		return
	}
	if !m.IsString {
		g.audioFrameLocked(d, m.Data)
		return
	}
	env, err := wire.Decode(m.Data)
	if err != nil {
		g.sendLocked(d, "", wire.NewError(wire.CodeBadRequest, err.Error()))
		return
	}
	d.uplinks[env.Type]++
	g.uplinkLocked(d, env)
}

// onTrack reads the microphone track until the peer connection closes.
func (rc *rtcConn) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	g := rc.g
	g.mu.Lock()
	if g.closed || rc.closed {
		g.mu.Unlock()
		return
	}
	g.handlers.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.handlers.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			g.mu.Lock()
			if rc.d.conn == deviceConn(rc) && len(pkt.Payload) > 0 {
				g.rtpLocked(rc.d, pkt.Payload)
			}
			g.mu.Unlock()
		}
	}()
}
