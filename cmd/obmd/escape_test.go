package main

import (
	"fmt"
	"strings"
	"testing"
)

// render shows events as text: data as is, actions as <quit> <break> <help>.
func render(evs []escEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		switch ev.action {
		case escNone:
			b.Write(ev.data)
		case escQuit:
			b.WriteString("<quit>")
		case escBreak:
			b.WriteString("<break>")
		case escHelp:
			b.WriteString("<help>")
		}
	}
	return b.String()
}

func TestEscaper(t *testing.T) {
	tests := []struct {
		name  string
		esc   byte
		reads []string
		want  string
	}{
		{"plain text", '~', []string{"ls -l\r"}, "ls -l\r"},
		{"quit at the start", '~', []string{"~."}, "<quit>"},
		{"quit after CR", '~', []string{"ls\r~.rest"}, "ls\r<quit>"},
		{"quit after LF", '~', []string{"ls\n~."}, "ls\n<quit>"},
		{"mid-line tilde is data", '~', []string{"cd ~.x\r"}, "cd ~.x\r"},
		{"break then quit", '~', []string{"\r~B~."}, "\r<break><quit>"},
		{"help", '~', []string{"~?x"}, "<help>x"},
		{"double escape types one", '~', []string{"~~.\r"}, "~.\r"},
		{"escape then ordinary key sends both", '~', []string{"~x"}, "~x"},
		{"escape split across reads", '~', []string{"ab\r~", ".", "never"}, "ab\r<quit>"},
		{"held escape released by the next read", '~', []string{"~", "a"}, "~a"},
		{"other escape character", '&', []string{"~.\r&."}, "~.\r<quit>"},
		{"control escape character", 0x1d, []string{"\x1d."}, "<quit>"},
		{"escapes disabled", 0, []string{"~.~B"}, "~.~B"},
		{"CR inside an escaped run keeps line start", '~', []string{"~x\r~."}, "~x\r<quit>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEscaper(tc.esc)
			var got strings.Builder
			for _, r := range tc.reads {
				out := render(e.feed([]byte(r)))
				got.WriteString(out)
				if strings.HasSuffix(out, "<quit>") {
					break
				}
			}
			if got.String() != tc.want {
				t.Fatalf("feed %q = %q, want %q", tc.reads, got.String(), tc.want)
			}
		})
	}
}

func TestParseConsoleFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // the URL, or the error's start
	}{
		{[]string{"http://h:8080/node/n1/console?token=abc"}, "ws://h:8080/node/n1/console?token=abc"},
		{[]string{"https://h/node/n1/console?token=abc&mode=ro"}, "wss://h/node/n1/console?mode=ro&token=abc"},
		{[]string{"ftp://h/node/n1/console?token=abc"}, `error: the console URL's scheme "ftp"`},
		{[]string{"http://h/node/n1/console"}, "error: no token"},
		{[]string{"http://h/node/n1/power_status?token=x"}, "error: the console URL must look like"},
		{[]string{"-e", "ab", "http://h/node/n1/console?token=x"}, `error: -e "ab"`},
		{[]string{}, "error: give exactly one console URL"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			o, err := parseConsoleFlags(tc.args, &strings.Builder{})
			got := ""
			if err != nil {
				got = "error: " + err.Error()
			} else {
				got = o.url.String()
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
