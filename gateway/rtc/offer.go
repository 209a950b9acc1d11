package rtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/problem"
	"github.com/earshot/earshot/gateway/registry"
)

// offer answers POST Path: RFC 9725 section 4.2, without trickle ICE.
func (s *Server) offer(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		s.m.offer("unsupported_media_type")
		problem.Write(w, http.StatusUnsupportedMediaType, wire.CodeBadRequest.String(), "the offer must be Content-Type: application/sdp")
		return
	}
	dev, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxOfferBytes)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.m.offer("too_large")
			problem.Write(w, http.StatusBadRequest, wire.CodeTooLarge.String(), fmt.Sprintf("the offer is over %d bytes", s.cfg.MaxOfferBytes))
			return
		}
		s.m.offer("bad_offer")
		problem.Write(w, http.StatusBadRequest, wire.CodeBadRequest.String(), "reading the offer failed")
		return
	}
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}
	if err := checkOffer(desc); err != nil {
		s.m.offer("bad_offer")
		problem.Write(w, http.StatusBadRequest, wire.CodeBadRequest.String(), err.Error())
		return
	}
	if status, code, detail := s.reserve(); status != 0 {
		s.m.offer("busy")
		w.Header().Set("Retry-After", "5")
		problem.Write(w, status, code, detail)
		return
	}
	p, answer, err := s.answer(r.Context(), dev, desc)
	if err != nil {
		s.release()
		var bad *offerError
		if errors.As(err, &bad) {
			s.m.offer("bad_offer")
			problem.Write(w, http.StatusBadRequest, wire.CodeBadRequest.String(), err.Error())
			return
		}
		s.m.offer("error")
		s.log.Warn("answering an offer", "device", dev.ID, "err", err)
		problem.Write(w, http.StatusServiceUnavailable, wire.CodeUnavailable.String(), "could not set up the peer connection; retry")
		return
	}
	if !s.admit(p) {
		p.abort()
		s.m.offer("busy")
		problem.Write(w, http.StatusServiceUnavailable, wire.CodeShutdown.String(), "the gateway is shutting down")
		return
	}
	s.m.offer("created")
	p.start()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", Path+"/"+p.id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer) // a device that went away finds no session; the hello timeout ends it
}

// offerError is an offer pion refused; the device can fix it.
type offerError struct{ err error }

func (e *offerError) Error() string { return e.err.Error() }
func (e *offerError) Unwrap() error { return e.err }

// answer creates the peer connection for an offer and returns its answer with every
// local candidate.
func (s *Server) answer(ctx context.Context, dev registry.Device, offer webrtc.SessionDescription) (*peer, string, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("rtc: new peer connection: %w", err)
	}
	p := newPeer(s, dev, pc)
	fail := func(err error) (*peer, string, error) {
		p.abort()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(offer); err != nil {
		return fail(&offerError{fmt.Errorf("%w: %w", ErrOffer, err)})
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(&offerError{fmt.Errorf("%w: %w", ErrOffer, err)})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(fmt.Errorf("rtc: set local description: %w", err))
	}
	t := time.NewTimer(s.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(errors.New("rtc: ICE gathering timed out"))
	case <-ctx.Done():
		return fail(fmt.Errorf("rtc: waiting for ICE gathering: %w", ctx.Err()))
	}
	local := pc.LocalDescription()
	if local == nil {
		return fail(errors.New("rtc: no local description"))
	}
	return p, local.SDP, nil
}

// checkOffer refuses offers this gateway cannot use, with a message for the device:
// exactly one audio m-line that sends Opus, one m=application (the data channel), and
// nothing else.
func checkOffer(desc webrtc.SessionDescription) error {
	parsed, err := desc.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: unparsable SDP: %w", ErrOffer, err)
	}
	audio, app := 0, 0
	for _, md := range parsed.MediaDescriptions {
		switch media := md.MediaName.Media; media {
		case "audio":
			audio++
			opus, dir := false, "sendrecv"
			for _, a := range md.Attributes {
				switch a.Key {
				case "rtpmap":
					if _, enc, ok := strings.Cut(a.Value, " "); ok && strings.HasPrefix(strings.ToLower(enc), "opus/48000") {
						opus = true
					}
				case "sendrecv", "sendonly", "recvonly", "inactive":
					dir = a.Key
				}
			}
			if !opus {
				return fmt.Errorf("%w: the audio m-line offers no Opus (opus/48000)", ErrOffer)
			}
			if dir != "sendonly" && dir != "sendrecv" {
				return fmt.Errorf("%w: the audio m-line is %s; the device must send (sendonly or sendrecv)", ErrOffer, dir)
			}
		case "application":
			app++
		default:
			return fmt.Errorf("%w: m=%s is not supported; offer one Opus audio m-line and a data channel", ErrOffer, media)
		}
	}
	switch {
	case audio != 1:
		return fmt.Errorf("%w: %d audio m-lines, want exactly one (Opus, the microphone)", ErrOffer, audio)
	case app != 1:
		return fmt.Errorf("%w: %d m=application lines, want exactly one (the %q data channel)", ErrOffer, app, Label)
	}
	return nil
}
