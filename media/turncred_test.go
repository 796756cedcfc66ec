package media

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func testCreds() TURNCredentials {
	return TURNCredentials{
		URLs:     []string{"stun:198.51.100.1:3478", "turn:198.51.100.1:3478?transport=udp"},
		Username: "1790000000:12D3KooWexample",
		Password: "c2VjcmV0",
		Expires:  time.Unix(1790000000, 0),
	}
}

func TestTURNCredentialsRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTURNCredentials(&buf, testCreds()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTURNCredentials(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, testCreds()) || !got.Expires.Equal(testCreds().Expires) {
		t.Fatalf("round trip: got %+v", got)
	}
	if srv := got.ICEServer(); srv.Username != got.Username || srv.Credential != got.Password || len(srv.URLs) != 2 {
		t.Fatalf("ICEServer: %+v", srv)
	}
}

func TestTURNCredentialsRefused(t *testing.T) {
	good, err := testCreds().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bad := func(f func(c *TURNCredentials)) TURNCredentials {
		c := testCreds()
		f(&c)
		return c
	}
	for name, c := range map[string]TURNCredentials{
		"no urls":    bad(func(c *TURNCredentials) { c.URLs = nil }),
		"http url":   bad(func(c *TURNCredentials) { c.URLs = []string{"http://example.org"} }),
		"long user":  bad(func(c *TURNCredentials) { c.Username = string(make([]byte, 300)) }),
		"nine urls":  bad(func(c *TURNCredentials) { c.URLs = make([]string, 9) }),
		"empty urls": bad(func(c *TURNCredentials) { c.URLs = []string{""} }),
	} {
		if _, err := c.Marshal(); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":     {nil, ErrMalformed},
		"version":   {append([]byte{2}, good[1:]...), ErrVersion},
		"truncated": {good[:len(good)-3], ErrMalformed},
		"trailing":  {append(append([]byte{}, good...), 0), ErrMalformed},
		"oversized": {make([]byte, MaxTURNCredSize+1), ErrTooLarge},
	} {
		if _, err := ParseTURNCredentials(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	// A frame header announcing more than the limit is refused unread.
	if _, err := ReadTURNCredentials(bytes.NewReader([]byte{0x81, 0x40})); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized frame: %v", err)
	}
}

func FuzzParseTURNCredentials(f *testing.F) {
	good, _ := testCreds().Marshal()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseTURNCredentials(b)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
