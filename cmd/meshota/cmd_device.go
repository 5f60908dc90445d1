package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/host"
	"github.com/meshota/meshota/protocol"
)

func init() {
	c := &command{
		Name:    "device",
		Summary: "create a device identity (device init)",
		Usage: `Usage: meshota device init --dir D --root ROOT_FILE [--name NAME] [--kem hybrid|x25519]

Creates a device directory: an HPKE key pair (ML-KEM-768+X25519 by default,
X25519 alone for very small devices), a status-signing key, a libp2p
identity, and a copy of the publisher's trust root. Prints the device ID
and its enrollment string; give the enrollment string to the publisher
(meshota fleet add).

Example:
  meshota device init --dir ./dev1 --root ./publisher/roots/0001.root --name kiosk-1`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 || args[0] != "init" {
			return fmt.Errorf("%w: the only device subcommand is init", errUsage)
		}
		fs := newFlagSet(c, e)
		dir := fs.String("dir", "", "device directory to create (required)")
		root := fs.String("root", "", "the publisher's trust root file (required)")
		name := fs.String("name", "", "a label for the publisher's fleet list")
		kem := fs.String("kem", "hybrid", "key encapsulation: hybrid (ML-KEM-768+X25519) or x25519")
		if err := parseArgs(fs, args[1:]); err != nil {
			return err
		}
		if *dir == "" || *root == "" {
			return fmt.Errorf("%w: --dir and --root are required", errUsage)
		}
		id, enrollment, err := deviceInit(*dir, *root, *name, *kem)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "device %s created in %s\nenrollment (give this to the publisher):\n%s\n", id, *dir, enrollment)
		return nil
	}
	register(c)
}

// Files of a device directory.
const (
	deviceSigningKey = "signing.key"
	deviceHPKEKey    = "device.key"
	deviceIdentity   = "identity.key"
	deviceRoot       = "root"
	deviceEnrollment = "enrollment.txt"
)

func deviceInit(dir, rootFile, name, kemName string) (protocol.DeviceID, string, error) {
	var kem crypto.KEM
	switch kemName {
	case "hybrid":
		kem = crypto.KEMMLKEM768X25519
	case "x25519":
		kem = crypto.KEMX25519
	default:
		return protocol.DeviceID{}, "", fmt.Errorf("%w: --kem must be hybrid or x25519", errUsage)
	}
	if _, err := os.Stat(filepath.Join(dir, deviceSigningKey)); err == nil {
		return protocol.DeviceID{}, "", fmt.Errorf("%s is already a device directory; refusing to overwrite it", dir)
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		return protocol.DeviceID{}, "", fmt.Errorf("read trust root: %w", err)
	}
	env, err := crypto.ParseEnvelope(root, 64<<10)
	if err != nil {
		return protocol.DeviceID{}, "", fmt.Errorf("%s is not a trust root: %w", rootFile, err)
	}
	if _, err := crypto.VerifyInitialRoot(env, time.Now()); err != nil {
		return protocol.DeviceID{}, "", fmt.Errorf("%s: %w", rootFile, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return protocol.DeviceID{}, "", err
	}
	sk, err := crypto.GenerateSigningKey()
	if err != nil {
		return protocol.DeviceID{}, "", err
	}
	dk, err := crypto.GenerateDeviceKey(kem)
	if err != nil {
		return protocol.DeviceID{}, "", err
	}
	if err := crypto.WriteSigningKeyFile(filepath.Join(dir, deviceSigningKey), sk); err != nil {
		return protocol.DeviceID{}, "", err
	}
	if err := crypto.WriteDeviceKeyFile(filepath.Join(dir, deviceHPKEKey), dk); err != nil {
		return protocol.DeviceID{}, "", err
	}
	if _, err := host.LoadOrCreateIdentity(filepath.Join(dir, deviceIdentity)); err != nil {
		return protocol.DeviceID{}, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, deviceRoot), root, 0o644); err != nil {
		return protocol.DeviceID{}, "", err
	}
	enrollment, err := protocol.NewEnrollment(sk, dk, name, time.Now())
	if err != nil {
		return protocol.DeviceID{}, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, deviceEnrollment), []byte(enrollment+"\n"), 0o644); err != nil {
		return protocol.DeviceID{}, "", err
	}
	return protocol.DeviceIDOf(sk.Public()), enrollment, nil
}
