//go:build !linux

package harness

import (
	"errors"
	"os"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

type procStatus struct{ rss, hwm int64 }

func readProcStatus(string) (procStatus, error) {
	return procStatus{}, errors.New("no /proc on this system")
}

func processUsage(*os.ProcessState) (procUsage, bool) { return procUsage{}, false }

func selfUsage() (procUsage, bool) { return procUsage{}, false }

func openFiles() (int, uint64, bool) { return 0, 0, false }

func raiseFileLimit(uint64) (uint64, error) { return 0, errors.New("not supported on this system") }

func loadAverage() float64 { return 0 }
