package capability_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/capability"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		desc    string
		name    string
		wantErr string // substring of the error message, or "" for a valid name
	}{
		{desc: "plain", name: "billing"},
		{desc: "colon and at", name: "svc:billing@eu"},
		{desc: "unicode", name: "fakturering-æøå"},
		{desc: "spaces", name: "send email"},
		{desc: "longest", name: strings.Repeat("n", capability.MaxNameLen)},
		{desc: "empty", name: "", wantErr: "orchestration name is empty"},
		{desc: "too long", name: strings.Repeat("n", capability.MaxNameLen+1), wantErr: "257 bytes long"},
		{desc: "open brace", name: "a{b", wantErr: "contains '{'"},
		{desc: "close brace", name: "a}b", wantErr: "contains '}'"},
		{desc: "hash tag", name: "{p0}", wantErr: "hash tag"},
		{desc: "newline", name: "a\nb", wantErr: "line break"},
		{desc: "carriage return", name: "a\rb", wantErr: "line break"},
		{desc: "escape sequence", name: "a\x1b]0;title\x07", wantErr: "control character U+001B"},
		{desc: "tab", name: "a\tb", wantErr: "control character U+0009"},
		{desc: "DEL", name: "a\x7f", wantErr: "control character U+007F"},
		{desc: "C1 control", name: "a\u009b31m", wantErr: "control character U+009B"},
		{desc: "right-to-left override", name: "invoice\u202egpj.exe", wantErr: "bidirectional text control U+202E"},
		{desc: "isolate", name: "a\u2066b\u2069", wantErr: "bidirectional text control U+2066"},
		{desc: "invalid UTF-8", name: "a\xffb", wantErr: "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			err := capability.ValidateName("orchestration", tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateName(%q) = %v; want nil", tc.name, err)
				}
				return
			}
			if !errors.Is(err, capability.ErrInvalidName) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateName(%q) = %v; want ErrInvalidName mentioning %q", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestValidateNameKind(t *testing.T) {
	tests := []struct {
		kind string
		want string
	}{
		{kind: "activity", want: "invalid name: activity name is empty"},
		{kind: "orchestration", want: "invalid name: orchestration name is empty"},
		{kind: "", want: "invalid name: handler name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if err := capability.ValidateName(tc.kind, ""); err == nil || err.Error() != tc.want {
				t.Errorf("ValidateName(%q, \"\") = %v; want %q", tc.kind, err, tc.want)
			}
		})
	}
}
