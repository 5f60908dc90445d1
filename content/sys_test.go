package content

import (
	"errors"
	"os"
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

func flipByte(p string, off int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 1
	_, err = f.WriteAt(b, off)
	return err
}

func writeFileMode(p string, m os.FileMode) error { return os.WriteFile(p, []byte("x"), m) }
func chmod(p string, m os.FileMode) error         { return os.Chmod(p, m) }
func remove(p string) error                       { return os.Remove(p) }
func relink(p, target string) error {
	if err := os.Remove(p); err != nil {
		return err
	}
	return os.Symlink(target, p)
}
