package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"serendip/node"
)

// procs runs every relay and node as a child process of the serendip
// binary (serendip relay, serendip node --local) and drives the nodes
// through their JSON API, as a person's browser would.
type procs struct {
	cfg    Config
	bin    string
	dir    string
	tmpDir bool
	client *http.Client

	mu       sync.Mutex
	relays   []*child
	boot     []string
	children []*child
}

func newProcs(cfg Config) (*procs, error) {
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("%w: finding the serendip binary: %w", ErrLaunch, err)
		}
	}
	dir, tmp := cfg.LogDir, false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "serendip-harness-"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLaunch, err)
		}
		tmp = true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	return &procs{
		cfg: cfg, bin: bin, dir: dir, tmpDir: tmp,
		client: &http.Client{
			Timeout:   callTimeout,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		},
	}, nil
}

func (p *procs) mode() string { return "processes" }

// child is one running serendip process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	log  *os.File
}

func (p *procs) spawn(ctx context.Context, name string, args ...string) (*child, io.Reader, error) {
	logf, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrLaunch, p.bin, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: logf}
	// The reader of out must finish before Wait; the caller reads the
	// first lines, this copies the rest to the log.
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.Copy(io.MultiWriter(pw, logf), out)
		pw.Close()
		_ = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, pr, nil
}

// firstLine reads lines from r until one satisfies take, for at most d,
// then keeps draining r so the child never blocks on its stdout.
func firstLine(r io.Reader, d time.Duration, take func(string) bool) (string, error) {
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		found := false
		for sc.Scan() {
			if !found && take(sc.Text()) {
				found = true
				lines <- sc.Text()
			}
		}
		if !found {
			close(lines)
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			return "", errors.New("exited before it was ready")
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("not ready after %v", d)
	}
}

func (p *procs) startRelays(ctx context.Context, n int) error {
	for i := range n {
		addrFile := filepath.Join(p.dir, fmt.Sprintf("relay-%d.addrs", i))
		args := []string{"relay", "--listen", "/ip4/127.0.0.1/tcp/0", "--network", p.cfg.Network,
			"--addr-file", addrFile, "--log-level", "warn"}
		for _, b := range p.boot {
			args = append(args, "--bootstrap", b)
		}
		c, out, err := p.spawn(ctx, fmt.Sprintf("relay-%d", i), args...)
		if err != nil {
			return err
		}
		p.relays = append(p.relays, c)
		line, err := firstLine(out, 20*time.Second, func(l string) bool { return strings.Contains(l, "/p2p/") })
		if err != nil {
			return fmt.Errorf("%w: relay %d %v (log: %s)", ErrLaunch, i, err, c.log.Name())
		}
		p.boot = append(p.boot, strings.TrimSpace(line))
	}
	return nil
}

func (p *procs) launch(ctx context.Context, spec nodeSpec) (member, error) {
	args := []string{"node", "--local", "--network", p.cfg.Network, "--http", "127.0.0.1:0", "--log-level", "warn"}
	p.mu.Lock()
	for _, b := range p.boot {
		args = append(args, "--bootstrap", b)
	}
	p.mu.Unlock()
	if spec.auto {
		args = append(args, "--auto")
	}
	if spec.callTime > 0 {
		args = append(args, "--call-seconds", strconv.FormatFloat(spec.callTime.Seconds(), 'f', -1, 64))
		if p.cfg.CallSpread {
			args = append(args, "--call-spread")
		}
	}
	if p.cfg.Media == MediaFiles {
		args = append(args, "--video", p.cfg.VideoFile, "--audio", p.cfg.AudioFile)
	} else {
		args = append(args, "--text-only")
	}
	if p.cfg.ShardTarget > 0 {
		args = append(args, "--shard-target", strconv.Itoa(p.cfg.ShardTarget))
	}
	c, out, err := p.spawn(ctx, fmt.Sprintf("node-%d", spec.index), args...)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.children = append(p.children, c)
	p.mu.Unlock()
	line, err := firstLine(out, 30*time.Second, func(l string) bool { return strings.HasPrefix(l, "open http://") })
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("%w: node %d %v (log: %s)", ErrLaunch, spec.index, err, c.log.Name())
	}
	m := &procNode{p: p, c: c, base: strings.TrimPrefix(strings.TrimSpace(line), "open ")}
	st, err := m.State(ctx)
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("%w: node %d API: %w", ErrLaunch, spec.index, err)
	}
	m.id = st.PeerID
	return m, nil
}

func (p *procs) traffic() (classBytes, bool)          { return nil, false }
func (p *procs) relayTraffic() (uint64, uint64, bool) { return 0, 0, false }
func (p *procs) connections() (uint64, uint64, bool)  { return 0, 0, false }
func (p *procs) sharedSignatureChecks() uint64        { return 0 }
func (p *procs) childrenSnapshot() []*child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*child(nil), p.children...)
}
func (p *procs) relaysSnapshot() []*child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*child(nil), p.relays...)
}
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (p *procs) rss() (int64, bool) {
	var sum int64
	for _, c := range p.childrenSnapshot() {
		if c.exited() {
			continue
		}
		if m, err := readProcStatus(strconv.Itoa(c.cmd.Process.Pid)); err == nil {
			sum += m.rss
		}
	}
	return sum, true
}

// relayUsage sums the relays' CPU time, once they have exited.
func (p *procs) relayUsage() procUsage {
	var u procUsage
	for _, c := range p.relaysSnapshot() {
		if cu, ok := c.usage(); ok {
			u.CPU += cu.CPU
			u.MaxRSS = max(u.MaxRSS, cu.MaxRSS)
		}
	}
	return u
}

func (p *procs) close() error {
	for _, c := range p.relaysSnapshot() {
		c.stop()
	}
	for _, c := range p.childrenSnapshot() {
		c.kill()
	}
	if p.tmpDir {
		return os.RemoveAll(p.dir)
	}
	return nil
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop asks politely (SIGTERM) and kills after 10 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.kill()
	}
}

func (c *child) usage() (procUsage, bool) {
	if !c.exited() || c.cmd.ProcessState == nil {
		return procUsage{}, false
	}
	return processUsage(c.cmd.ProcessState)
}

// procNode is a node in a child process, driven through its JSON API.
type procNode struct {
	p    *procs
	c    *child
	base string
	id   string

	noMetrics, noChat atomic.Bool
}

func (m *procNode) PeerID() string { return m.id }

func (m *procNode) do(ctx context.Context, method, path string, v any) error {
	return m.doBody(ctx, method, path, nil, v)
}

// doBody calls the API with an optional JSON body and decodes the answer
// into v, if not nil.
func (m *procNode) doBody(ctx context.Context, method, path string, body, v any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(answer, &e)
		return &apiError{code: resp.StatusCode, msg: e.Error}
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(answer, v)
}

type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.msg) }

func (m *procNode) State(ctx context.Context) (node.State, error) {
	var st node.State
	err := m.do(ctx, http.MethodGet, "/api/state", &st)
	return st, err
}

func (m *procNode) History(ctx context.Context) ([]node.CallRecord, error) {
	var h []node.CallRecord
	err := m.do(ctx, http.MethodGet, "/api/calls", &h)
	return h, err
}

// Metrics reads GET /api/metrics where the node serves it.
func (m *procNode) Metrics(ctx context.Context) (node.Metrics, bool) {
	var mt node.Metrics
	if m.noMetrics.Load() {
		return mt, false
	}
	if err := m.do(ctx, http.MethodGet, "/api/metrics", &mt); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.code == http.StatusNotFound {
			m.noMetrics.Store(true)
		}
		return mt, false
	}
	return mt, true
}

func (m *procNode) Start(ctx context.Context) error {
	return m.do(ctx, http.MethodPost, "/api/start", nil)
}
func (m *procNode) Next(ctx context.Context) error {
	return m.do(ctx, http.MethodPost, "/api/next", nil)
}

// Chat posts to /api/chat where the node serves it.
func (m *procNode) Chat(ctx context.Context, text string) error {
	if m.noChat.Load() {
		return errNoChat
	}
	err := m.doBody(ctx, http.MethodPost, "/api/chat", map[string]string{"text": text}, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.code == http.StatusNotFound || ae.code == http.StatusMethodNotAllowed) {
		m.noChat.Store(true)
		return errNoChat
	}
	return err
}

func (m *procNode) Kill() error {
	m.c.kill()
	return nil
}

func (m *procNode) Close() error {
	m.c.stop()
	return nil
}

func (m *procNode) Usage() (procUsage, bool) { return m.c.usage() }
