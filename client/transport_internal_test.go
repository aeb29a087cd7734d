package client

import "testing"

func TestIsLoopback(t *testing.T) {
	for _, tt := range []struct {
		authority string
		want      bool
	}{
		{"localhost:50051", true},
		{"LOCALHOST.", true},
		{"127.0.0.1:1", true},
		{"127.3.2.1:1", true},
		{"[::1]:50051", true},
		{"::1", true},
		{"192.0.2.2:50051", false},
		{"whirl.example.com:443", false},
		{"localhost.example.com:1", false},
		{"[2001:db8::1]:1", false},
		{"", false},
	} {
		if got := isLoopback(tt.authority); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.authority, got, tt.want)
		}
	}
}

func TestConnCause(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`, "connection refused"},
		{`connection error: desc = "transport: Error while dialing: dial tcp: lookup nohost.invalid: no such host"`, "no such host"},
		{`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`,
			"TLS handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{`connection error: desc = "error reading server preface: EOF"`, "error reading server preface: EOF"},
		{"something else", "something else"},
	} {
		if got := connCause(tt.msg); got != tt.want {
			t.Errorf("connCause(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
