package lease

import (
	"crypto/rand"
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
