package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxKeyFile bounds what reading a key file may allocate.
const maxKeyFile = 16 << 10

// writeSecretFile creates path exclusively with mode 0600 and writes the
// comment lines then the secret line.
func writeSecretFile(path string, comment, secret []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrKeyFileExists, path)
		}
		return fmt.Errorf("creating key file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing key file %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	var buf bytes.Buffer
	buf.Write(comment)
	buf.Write(secret)
	buf.WriteByte('\n')
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	return nil
}

// readSecretFile opens path, checks its mode on the opened file (no race
// with a chmod between check and read) and returns its one non-comment,
// non-blank line.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", ErrMalformedKey, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %04o, group or others may access it; run: chmod 600 %s", ErrKeyFilePermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return "", fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformedKey, path, maxKeyFile)
	}
	return secretLine(path, string(data))
}

func secretLine(path, data string) (string, error) {
	found := ""
	for line := range strings.Lines(data) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if found != "" {
			return "", fmt.Errorf("%w: %s holds more than one key line", ErrMalformedKey, path)
		}
		found = line
	}
	if found == "" {
		return "", fmt.Errorf("%w: %s holds no key line", ErrMalformedKey, path)
	}
	return found, nil
}
