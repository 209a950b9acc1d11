package speech

import (
	"fmt"
	"time"
)

// Profile tunes the [Endpointer] for one kind of utterance. Zero fields take
// [CommandProfile]'s values.
type Profile struct {
	Name            string
	TrailingSilence time.Duration // end of speech after this much silence
	MaxSpeech       time.Duration // cap: end the utterance after this much audio
	NoSpeech        time.Duration // give up when no speech started within this
	// WarmUp is the first part of a stream, treated as unknown rather than
	// as silence while the noise floor is learning: no start is reported in
	// it, but speech in it is found once the floor is known.
	WarmUp time.Duration
}

// CommandProfile suits a spoken purchase or question.
var CommandProfile = Profile{Name: "command", TrailingSilence: 700 * time.Millisecond, MaxSpeech: 10 * time.Second, NoSpeech: 5 * time.Second, WarmUp: 200 * time.Millisecond}

// ConfirmProfile suits a short answer ("yes", "cancel").
var ConfirmProfile = Profile{Name: "confirm", TrailingSilence: 450 * time.Millisecond, MaxSpeech: 5 * time.Second, NoSpeech: 4 * time.Second, WarmUp: 200 * time.Millisecond}

// Event is what the audio did to an [Endpointer]. EventEnd, EventCap and
// EventNoSpeech are final: one of them ends the stream. EventSpeechStart
// can repeat (see [Endpointer.Push]).
type Event uint8

// Events, in increasing significance.
const (
	EventNone        Event = iota // nothing changed
	EventSpeechStart              // speech started
	EventEnd                      // end of speech found
	EventCap                      // Profile.MaxSpeech reached
	EventNoSpeech                 // Profile.NoSpeech elapsed without speech
)

func (e Event) String() string {
	switch e {
	case EventNone:
		return "none"
	case EventSpeechStart:
		return "speech-start"
	case EventEnd:
		return "end"
	case EventCap:
		return "cap"
	case EventNoSpeech:
		return "no-speech"
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// Onset and utterance framing.
const (
	onsetWindow  = 8         // frames examined for an onset
	onsetLoud    = 5         // loud frames needed in the window
	backGap      = 2         // quiet frames bridged when walking back to the start
	rescanDropDB = 3.0       // floor drop that makes the onset search look at the whole history
	prerollS     = Rate / 5  // Speech() starts 200 ms before the start
	postrollS    = Rate / 5  // and ends 200 ms after the end
	minSpeechS   = Rate / 10 // less speech than this before a trailing silence is a click
)

// Endpointer finds the start and the end of one utterance in a 16 kHz
// stream: a voice activity detector (energy and zero-crossing rate against
// an adaptive noise floor) plus the rules of a [Profile]. It keeps at most
// Profile.MaxSpeech + 1 s of audio. It is not safe for concurrent use.
type Endpointer struct {
	p                                Profile
	warmS, trailS, maxS, noS, limitS int64

	v       vad
	pending []int16 // a partial 10 ms frame
	buf     []int16 // retained audio; buf[0] is stream sample bufOff
	bufOff  int64
	pushed  int64 // samples pushed (Elapsed)

	started    bool
	startS     int64
	done       bool
	endS       int64
	lastLoudF  int64 // last non-quiet frame since the start
	silence    int64 // quiet frames since then
	heard      bool  // our detector heard speech since the start
	device     bool  // the start came from the device's detector
	startFloor float64
	minOnsetF  int64 // frames before this were a click: no onset there
	scanned    bool  // the onset search has looked at the whole history once
	scanFloor  float64
}

// NewEndpointer returns an endpointer for profile p.
func NewEndpointer(p Profile) *Endpointer {
	def := CommandProfile
	if p.TrailingSilence <= 0 {
		p.TrailingSilence = def.TrailingSilence
	}
	if p.MaxSpeech <= 0 {
		p.MaxSpeech = def.MaxSpeech
	}
	if p.NoSpeech <= 0 {
		p.NoSpeech = def.NoSpeech
	}
	if p.WarmUp <= 0 {
		p.WarmUp = def.WarmUp
	}
	if p.Name == "" {
		p.Name = def.Name
	}
	e := &Endpointer{
		p:      p,
		warmS:  int64(samplesFor(p.WarmUp)),
		trailS: int64(samplesFor(p.TrailingSilence)),
		maxS:   int64(samplesFor(p.MaxSpeech)),
		noS:    int64(samplesFor(p.NoSpeech)),
		limitS: int64(samplesFor(p.MaxSpeech + time.Second)),
	}
	e.Reset()
	return e
}

// Profile returns the profile in use (with defaults applied).
func (e *Endpointer) Profile() Profile { return e.p }

// Reset prepares the endpointer for a new stream, keeping its buffers.
func (e *Endpointer) Reset() {
	*e = Endpointer{
		p: e.p, warmS: e.warmS, trailS: e.trailS, maxS: e.maxS, noS: e.noS, limitS: e.limitS,
		pending: e.pending[:0], buf: e.buf[:0],
	}
}

// Push feeds 16 kHz samples (any length) and returns the most significant
// event they caused. After a final event, Push ignores its input and returns
// EventNone. A start followed by less than 100 ms of speech and then the
// trailing silence was a click or a knock: it is dropped without an event
// and the endpointer waits for speech again, so EventSpeechStart may come
// more than once.
func (e *Endpointer) Push(samples []int16) Event {
	if e.done {
		return EventNone
	}
	e.pushed += int64(len(samples))
	ev := EventNone
	for len(samples) > 0 && !e.done {
		var fr []int16
		if len(e.pending) == 0 && len(samples) >= vadFrame {
			fr, samples = samples[:vadFrame], samples[vadFrame:]
		} else {
			n := min(vadFrame-len(e.pending), len(samples))
			e.pending = append(e.pending, samples[:n]...)
			samples = samples[n:]
			if len(e.pending) < vadFrame {
				break
			}
			fr = e.pending
		}
		ev = max(ev, e.frame(fr))
		e.pending = e.pending[:0]
	}
	return ev
}

// frame runs one 10 ms frame through the detector and the profile's rules.
func (e *Endpointer) frame(fr []int16) Event {
	f := e.v.n
	feat := e.v.measure(fr, e.started)
	e.keep(fr)
	end := (f + 1) * vadFrame
	if !e.started {
		if end >= e.warmS {
			if s, ok := e.onset(); ok {
				e.begin(s)
				return EventSpeechStart
			}
		}
		if end >= e.noS {
			e.done = true
			return EventNoSpeech
		}
		return EventNone
	}
	if e.v.class(feat) != classQuiet {
		e.lastLoudF, e.heard = f, true
	} else if e.heard {
		// The floor may have dropped since (it was learning from the speech
		// itself): look at the silence again with the current floor.
		for i := f - 1; i > e.lastLoudF; i-- {
			if fe, ok := e.v.frame(i); ok && e.v.class(fe) != classQuiet {
				e.lastLoudF = i
				break
			}
		}
	}
	e.silence = f - e.lastLoudF
	if !e.device && e.v.floor < e.startFloor-rescanDropDB {
		e.rewalk()
	}
	switch {
	case e.heard && e.silence*vadFrame >= e.trailS && !e.device && e.click():
		// A knock or a click, not speech: wait for speech again.
		e.started, e.startS, e.heard = false, 0, false
		e.minOnsetF = f + 1
		return EventNone
	case e.heard && e.silence*vadFrame >= e.trailS:
		e.done, e.endS = true, (e.lastLoudF+1)*vadFrame
		return EventEnd
	case end-e.startS >= e.maxS:
		e.done, e.endS = true, end
		return EventCap
	}
	return EventNone
}

// onset looks for speech: onsetLoud loud frames within onsetWindow, in the
// latest window or, once after the warm-up and whenever the floor dropped,
// anywhere in the history (the floor is what decides, and it was too high
// while it was learning). It returns the first frame of the speech, found
// by walking back over soft frames.
func (e *Endpointer) onset() (int64, bool) {
	v := &e.v
	from := v.n - onsetWindow
	e.scanFloor = max(e.scanFloor, v.floor)
	if !e.scanned || v.floor < e.scanFloor-rescanDropDB {
		from = v.oldest()
		e.scanned, e.scanFloor = true, v.floor
	}
	from = max(from, v.oldest(), e.minOnsetF)
	for w := from; w+onsetWindow <= v.n; w++ {
		first, loud := int64(-1), 0
		for i := w; i < w+onsetWindow; i++ {
			if fe, _ := v.frame(i); v.class(fe) == classLoud {
				loud++
				if first < 0 {
					first = i
				}
			}
		}
		if loud < onsetLoud {
			continue
		}
		return e.walkBack(first), true
	}
	return 0, false
}

// click reports whether what started had less than minSpeech of speech
// frames in it.
func (e *Endpointer) click() bool {
	n := 0
	for i := e.startS / vadFrame; i <= e.lastLoudF; i++ {
		fe, ok := e.v.frame(i)
		if !ok {
			return false // longer than the history: not a click
		}
		if e.v.class(fe) != classQuiet {
			n++
		}
	}
	return n*vadFrame < minSpeechS
}

// walkBack returns the first frame of the speech that frame first is part
// of: it walks back over non-quiet frames, bridging short gaps.
func (e *Endpointer) walkBack(first int64) int64 {
	v := &e.v
	start, gap := first, 0
	lo := max(v.oldest(), (e.bufOff+vadFrame-1)/vadFrame, e.minOnsetF)
	for i := first - 1; i >= lo; i-- {
		fe, _ := v.frame(i)
		if v.class(fe) != classQuiet {
			start, gap = i, 0
			continue
		}
		gap++
		if gap > backGap {
			break
		}
	}
	return start
}

// rewalk moves the start back when the floor dropped after it was found.
func (e *Endpointer) rewalk() {
	e.startFloor = e.v.floor
	if s := e.walkBack(e.startS / vadFrame); s*vadFrame < e.startS {
		e.startS = s * vadFrame
	}
}

// begin marks the start of speech at frame s. Audio from up to a second
// before it is kept, in case the start moves back (see rewalk).
func (e *Endpointer) begin(s int64) {
	e.started, e.heard = true, true
	e.startS = s * vadFrame
	e.startFloor = e.v.floor
	e.lastLoudF, e.silence = e.v.n-1, 0
	e.trimTo(e.startS - Rate)
}

// keep appends processed audio to the retained buffer, bounding it.
func (e *Endpointer) keep(fr []int16) {
	e.buf = append(e.buf, fr...)
	if int64(len(e.buf)) > e.limitS {
		drop := int64(len(e.buf)) - e.limitS + min(Rate/2, e.limitS/4)
		e.trimTo(e.bufOff + drop)
	}
}

// trimTo drops retained audio before stream sample s.
func (e *Endpointer) trimTo(s int64) {
	n := s - e.bufOff
	if n <= 0 {
		return
	}
	n = min(n, int64(len(e.buf)))
	m := copy(e.buf, e.buf[n:])
	e.buf = e.buf[:m]
	e.bufOff += n
}

// DeviceVAD honours the device's own voice activity detector. start=true
// marks the start of speech now (EventSpeechStart, or EventNone if speech
// had already started); our detector still ends the utterance, but only
// after it heard speech itself (else the device's end or the cap does).
// start=false marks the end of speech now and returns EventEnd (the speech
// then starts where ours found it, or at the start of the retained audio).
// After a final event it returns EventNone.
func (e *Endpointer) DeviceVAD(start bool) Event {
	if e.done {
		return EventNone
	}
	if start {
		if e.started {
			return EventNone
		}
		e.begin(e.v.n)
		e.heard, e.device = false, true
		return EventSpeechStart
	}
	e.flushPending()
	if !e.started {
		e.started, e.startS = true, e.bufOff
	}
	e.done, e.endS = true, e.pushed
	return EventEnd
}

// Finish ends the stream (push-to-talk released): EventEnd if speech was
// heard, else EventNoSpeech; EventNone after a final event.
func (e *Endpointer) Finish() Event {
	if e.done {
		return EventNone
	}
	e.flushPending()
	e.done = true
	if !e.started {
		// Speech shorter than the warm-up is found here.
		e.scanned = false
		s, ok := e.onset()
		if !ok {
			return EventNoSpeech
		}
		e.begin(s)
	}
	e.endS = e.pushed
	if e.heard && e.silence > 0 {
		e.endS = (e.lastLoudF + 1) * vadFrame
	}
	return EventEnd
}

// flushPending keeps a partial frame's audio (it is not analysed).
func (e *Endpointer) flushPending() {
	e.buf = append(e.buf, e.pending...)
	e.pending = e.pending[:0]
}

// Speech returns a copy of the utterance: from 200 ms before the start to
// 200 ms after the end (or the latest audio), within the retained audio; all
// of the retained audio if no start was found.
func (e *Endpointer) Speech() []int16 {
	lo, hi := e.bufOff, e.bufOff+int64(len(e.buf))
	if e.started {
		lo = max(lo, e.startS-prerollS)
		if e.endS > 0 {
			hi = min(hi, e.endS+postrollS)
		}
	}
	if hi <= lo {
		return nil
	}
	return append([]int16(nil), e.buf[lo-e.bufOff:hi-e.bufOff]...)
}

// Elapsed returns the duration of the audio pushed so far.
func (e *Endpointer) Elapsed() time.Duration { return durationOf(e.pushed) }

// SpeechStart returns the stream offset of the start of speech (0 if none).
func (e *Endpointer) SpeechStart() time.Duration {
	if !e.started {
		return 0
	}
	return durationOf(e.startS)
}

// SpeechEnd returns the stream offset of the end of speech (0 if none).
func (e *Endpointer) SpeechEnd() time.Duration { return durationOf(e.endS) }
