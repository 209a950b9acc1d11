package rtc_test

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/earshot/earshot/device/wire"
	"github.com/earshot/earshot/gateway/rtc"
)

// BenchmarkWHIPSetup measures one device session over loopback: the WHIP exchange
// (both sides gather their candidates), ICE, DTLS, SCTP, the data channel, hello and
// hello.ok, then DELETE.
func BenchmarkWHIPSetup(b *testing.B) {
	r := newRig(b, rtc.Config{Logger: slog.New(slog.DiscardHandler)})
	k := r.enroll()
	b.ReportAllocs()
	for b.Loop() {
		d := r.connect(r.token(k))
		d.hello(&wire.Hello{})
		r.del(d.location, r.token(k))
		_ = d.pc.GracefulClose()
	}
	b.StopTimer()
	eventually(b, "peers gone", func() bool { return testutil.ToFloat64(r.srv.Metrics().Peers) == 0 })
}
