package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks convention.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every serialised signing secret.
const SecretPrefix = "whsec_"

// Secret sizes the spec allows, in bytes after base64 decoding: at least 192 bits, at
// most 512.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// newSecretBytes is what NewSecret draws.
	newSecretBytes = 32
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's clock
// when Verify is given a zero tolerance.
const DefaultTolerance = 5 * time.Minute

// signatureVersion tags an HMAC-SHA256 signature in the webhook-signature header.
const signatureVersion = "v1"

// Errors of signing and verification. Verify's errors wrap exactly one of them.
var (
	// ErrSecret: the secret is not "whsec_" + base64 of 24 to 64 bytes.
	ErrSecret = errors.New("webhook: malformed secret")
	// ErrID: the message id is empty or contains a '.', which would make the signed
	// content ambiguous.
	ErrID = errors.New("webhook: malformed message id")
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeaders = errors.New("webhook: missing webhook headers")
	// ErrMalformedHeader: webhook-timestamp is not an integer, or webhook-signature has
	// no entry of the form "<version>,<base64>".
	ErrMalformedHeader = errors.New("webhook: malformed webhook header")
	// ErrTimestamp: webhook-timestamp is further from now than the tolerance.
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
	// ErrSignature: no v1 signature in webhook-signature matches.
	ErrSignature = errors.New("webhook: signature mismatch")
)

// NewSecret draws 32 bytes from r (crypto/rand.Reader in production) and returns them
// serialised as "whsec_" + standard base64.
func NewSecret(r io.Reader) (string, error) {
	b := make([]byte, newSecretBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ValidSecret reports (as ErrSecret, wrapped) whether secret has the serialised shape
// Sign and Verify need. The secret itself never appears in the error.
func ValidSecret(secret string) error {
	_, err := secretKey(secret)
	return err
}

// secretKey returns the HMAC key of a serialised secret.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: want the %q prefix", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64 after %q", ErrSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// mac computes HMAC-SHA256(key, id "." unix "." body).
func mac(key []byte, id, unix string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(unix))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature value for a delivery of body with message id at
// ts (whole Unix seconds): "v1," + base64(HMAC-SHA256(key, id + "." + unix + "." +
// body)), the key being the base64-decoded part of secret after "whsec_".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	sum := mac(key, id, strconv.FormatInt(ts.Unix(), 10), body)
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(sum), nil
}

func checkID(id string) error {
	if id == "" || strings.ContainsRune(id, '.') {
		return fmt.Errorf("%w: empty or containing '.'", ErrID)
	}
	return nil
}

// Verify checks a delivery as its receiver: the three webhook headers of h must be
// present, webhook-timestamp within tolerance of now (DefaultTolerance when tolerance
// is 0 or less), and one "v1" entry of webhook-signature must equal the HMAC of body
// under secret (compared in constant time). The error wraps ErrSecret,
// ErrMissingHeaders, ErrMalformedHeader, ErrTimestamp or ErrSignature.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, unix, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	var missing []string
	for _, p := range [][2]string{{HeaderID, id}, {HeaderTimestamp, unix}, {HeaderSignature, sigs}} {
		if p[1] == "" {
			missing = append(missing, p[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}
	sec, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not an integer", ErrMalformedHeader, HeaderTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s from now, tolerance %s", ErrTimestamp, HeaderTimestamp, d.Round(time.Second), tolerance)
	}
	want := mac(key, id, unix, body)
	wellFormed := false
	for entry := range strings.FieldsSeq(sigs) {
		version, enc, ok := strings.Cut(entry, ",")
		if !ok || version == "" || enc == "" {
			continue
		}
		wellFormed = true
		if version != signatureVersion {
			continue // another scheme (v1a): not ours to check
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if !wellFormed {
		return fmt.Errorf("%w: %s has no <version>,<signature> entry", ErrMalformedHeader, HeaderSignature)
	}
	return ErrSignature
}
