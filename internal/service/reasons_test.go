package service

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestWithReasonMapsForeignErrors: whatever a handler returns leaves with
// exactly one whirl ErrorInfo; statuses whirl built keep theirs.
func TestWithReasonMapsForeignErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		code   codes.Code
		reason whirlv1.ErrorReason
	}{
		{"canceled", context.Canceled, codes.Canceled, whirlv1.ErrorReason_CANCELED},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded, whirlv1.ErrorReason_DEADLINE_EXCEEDED},
		{"plain error", errors.New("disk on fire"), codes.Internal, whirlv1.ErrorReason_INTERNAL},
		{"grpc-go's canceled", status.Error(codes.Canceled, "context canceled"), codes.Canceled, whirlv1.ErrorReason_CANCELED},
		{"grpc-go's oversized message", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), codes.ResourceExhausted, whirlv1.ErrorReason_BAD_REQUEST},
		{"grpc-go's unavailable", status.Error(codes.Unavailable, "transport is closing"), codes.Unavailable, whirlv1.ErrorReason_INTERNAL},
		{"whirl's own", errDraining, codes.Unavailable, whirlv1.ErrorReason_SHUTTING_DOWN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(withReason(tt.err))
			if st.Code() != tt.code || reasonOf(st) != tt.reason || len(st.Details()) != 1 {
				t.Errorf("withReason(%v) = %v %v with %d details, want %v %v alone", tt.err, st.Code(), reasonOf(st), len(st.Details()), tt.code, tt.reason)
			}
		})
	}
	if withReason(nil) != nil {
		t.Error("withReason(nil) is not nil")
	}
}

// TestStatusesAreBuiltInOnePlace: no file of the package but errors.go
// builds a status, so each has its reason by construction.
func TestStatusesAreBuiltInOnePlace(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "errors.go" || name == "reasons.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "status" && sel.Sel.Name != "FromError" && sel.Sel.Name != "Code" && sel.Sel.Name != "Convert" {
				t.Errorf("%s: status.%s: build statuses with newStatus", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
