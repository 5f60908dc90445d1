package content

import (
	"errors"
	"syscall"
)

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o600) }

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
