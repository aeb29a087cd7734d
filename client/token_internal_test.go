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
