package harness

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttr makes a child die with the harness, whatever kills it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// procStatus is the memory of a process from /proc/<pid>/status.
type procStatus struct {
	rss, hwm int64 // bytes: resident now, and at most so far
}

func readProcStatus(pid string) (procStatus, error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return procStatus{}, err
	}
	defer f.Close()
	var st procStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &st.rss
		case "VmHWM":
			dst = &st.hwm
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return procStatus{}, fmt.Errorf("/proc/%s/status: %s: %w", pid, k, err)
		}
		*dst = kb << 10
	}
	return st, sc.Err()
}

func rusage(ru *syscall.Rusage) procUsage {
	return procUsage{
		CPU:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		MaxRSS: ru.Maxrss << 10, // kilobytes on Linux
	}
}

// processUsage is an exited child's CPU time and peak RSS.
func processUsage(ps *os.ProcessState) (procUsage, bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return procUsage{}, false
	}
	return rusage(ru), true
}

// selfUsage is this process's CPU time and peak RSS so far.
func selfUsage() (procUsage, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return procUsage{}, false
	}
	return rusage(&ru), true
}

// openFiles counts this process's open file descriptors and returns its
// limit.
func openFiles() (n int, limit uint64, ok bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, false
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return len(ents), 0, true
	}
	return len(ents), rl.Cur, true
}

// raiseFileLimit raises this process's limit on open files to want where it
// is lower, as far as the system allows (beyond the hard limit only for
// root), and returns the limit it ends with.
func raiseFileLimit(want uint64) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur >= want {
		return rl.Cur, nil
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if most, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			want = min(want, most)
		}
	}
	up := syscall.Rlimit{Cur: want, Max: max(rl.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err != nil {
		// Not root: as far as the hard limit.
		up = syscall.Rlimit{Cur: min(want, rl.Max), Max: rl.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err2 != nil {
			return rl.Cur, err
		}
		return up.Cur, err
	}
	return up.Cur, nil
}

// loadAverage is the machine's one-minute load average (0 if unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
