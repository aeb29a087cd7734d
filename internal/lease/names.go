package lease

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// The forms of a lease's two names and of its holder's label. Every store
// makes names with NewToken and NewHandle, and the service checks what
// clients send against the same forms before any store sees it.
const (
	// TokenDigits is a Token's length: 128 random bits as lowercase hex.
	TokenDigits = 32
	// HandleDigits is a Handle's length: 64 random bits as lowercase hex.
	HandleDigits = 16
	// MaxHolderBytes bounds Lease.Holder, the label operators see.
	MaxHolderBytes = 128
)

// ValidToken reports whether s has the form of a lease token: exactly
// TokenDigits lowercase hex digits. It says nothing about whether the lease
// is live.
func ValidToken(s string) bool { return lowerHex(s, TokenDigits) }

// ValidHandle reports whether s has the form of a lease handle: exactly
// HandleDigits lowercase hex digits.
func ValidHandle(s string) bool { return lowerHex(s, HandleDigits) }

// NewToken returns a fresh random token.
func NewToken() string { return randomHex(TokenDigits / 2) }

// NewHandle returns a fresh random handle.
func NewHandle() string { return randomHex(HandleDigits / 2) }

func lowerHex(s string, digits int) bool {
	if len(s) != digits {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails (it aborts the program if the system
	// source breaks), so there is no error to handle.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// MaxRequestIDBytes bounds AcquireRequest.RequestID.
const MaxRequestIDBytes = 64

// ValidRequestID reports whether s has the form of a request id: 1 to
// MaxRequestIDBytes of A-Z, a-z, 0-9, '.', '_' and '-' (a UUID is typical).
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RequestKey names the lease granted to (holder, requestID) in a store. It
// is a digest, so a store's keys reveal neither.
func RequestKey(holder, requestID string) string {
	return digestHex("whirl-request-key", holder, requestID)
}

// SealToken hides token for keeping beside RequestKey(holder, requestID):
// only a caller who knows the request id can recover it with OpenToken, so
// a store that must answer a repeated request with the same token keeps
// nothing a reader of the store could use. Sealing is its own inverse.
func SealToken(token, holder, requestID string) string {
	raw, err := hex.DecodeString(token)
	if err != nil || len(raw) != TokenDigits/2 {
		return ""
	}
	mask := sha256.Sum256([]byte("whirl-request-mask\x00" + holder + "\x00" + requestID))
	for i := range raw {
		raw[i] ^= mask[i]
	}
	return hex.EncodeToString(raw)
}

// OpenToken recovers a token sealed by SealToken.
func OpenToken(sealed, holder, requestID string) string { return SealToken(sealed, holder, requestID) }

func digestHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
