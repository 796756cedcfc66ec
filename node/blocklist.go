package node

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// blocklistFile holds one blocked peer id per line in the data dir.
const blocklistFile = "blocked.txt"

// blocklist is the set of peers never to be matched again, kept on disk.
type blocklist struct {
	path string // "" keeps it in memory only
	mu   sync.Mutex
	set  map[peer.ID]bool
}

func loadBlocklist(dir string) (*blocklist, error) {
	b := &blocklist{set: make(map[peer.ID]bool)}
	if dir == "" {
		return b, nil
	}
	b.path = filepath.Join(dir, blocklistFile)
	f, err := os.Open(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blocklist: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := peer.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("blocklist %s: bad peer id %q: %w", b.path, line, err)
		}
		b.set[p] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("blocklist: %w", err)
	}
	return b, nil
}

func (b *blocklist) list() []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.ID, 0, len(b.set))
	for p := range b.set {
		out = append(out, p)
	}
	return out
}

// add records p, appending it to the file.
func (b *blocklist) add(p peer.ID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.set[p] {
		return nil
	}
	if b.path != "" {
		if err := os.MkdirAll(filepath.Dir(b.path), 0o700); err != nil {
			return fmt.Errorf("blocklist: %w", err)
		}
		f, err := os.OpenFile(b.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("blocklist: %w", err)
		}
		_, werr := fmt.Fprintln(f, p.String())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("blocklist: %w", werr)
		}
	}
	b.set[p] = true
	return nil
}
