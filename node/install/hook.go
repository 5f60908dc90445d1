package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Hook is a shell command run with /bin/sh -c, its environment extended
// with the release's MESHOTA_* variables. An empty Command always succeeds.
type Hook struct {
	Command string
	Timeout time.Duration // 0 means no limit beyond the caller's context
}

// maxHookOutput bounds what of a failing hook's output goes into an error.
const maxHookOutput = 2 << 10

func (h Hook) run(ctx context.Context, env []string) error {
	if h.Command == "" {
		return nil
	}
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Command)
	cmd.Env = append(os.Environ(), env...)
	// Run the hook in its own process group so a timeout kills everything
	// it started, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v", ctx.Err(), h.Timeout)
	}
	tail := out.Bytes()
	if len(tail) > maxHookOutput {
		tail = tail[len(tail)-maxHookOutput:]
	}
	return fmt.Errorf("%q: %v; output: %s", h.Command, err, bytes.TrimSpace(tail))
}
