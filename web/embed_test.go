package web

import (
	"io/fs"
	"strings"
	"testing"
)

// The ids tests and scripts rely on stay on the page and in its script.
func TestStableIDs(t *testing.T) {
	page, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(FS(), "app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"start", "next", "stop", "status", "local-video", "remote-video",
		"chat-log", "chat-input", "chat-send", "interests", "block"} {
		if !strings.Contains(string(page), `id="`+id+`"`) {
			t.Errorf("index.html has no element with id %q", id)
		}
		if !strings.Contains(string(script), `$('`+id+`')`) {
			t.Errorf("app.js does not use element %q", id)
		}
	}
	for _, name := range []string{"style.css", "favicon.svg"} {
		if _, err := fs.Stat(FS(), name); err != nil {
			t.Error(err)
		}
	}
}
