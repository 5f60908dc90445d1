package publisher

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshota/meshota/content/store"
	"github.com/meshota/meshota/crypto"
	"github.com/meshota/meshota/node/statefile"
	"github.com/meshota/meshota/protocol"
)

// Publisher is an open publisher directory.
type Publisher struct {
	dir     string
	rootKey *crypto.SigningKey
	relKey  *crypto.SigningKey
	roots   [][]byte // signed, oldest first
	root    *crypto.Root
	store   *store.Store
	limits  protocol.Limits
	now     func() time.Time
	log     *slog.Logger
}

// Options configure Init and Open.
type Options struct {
	// RootExpiry is how long a new trust root is valid (default a year).
	RootExpiry time.Duration
	Limits     protocol.Limits
	Now        func() time.Time
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.RootExpiry == 0 {
		o.RootExpiry = 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Init creates a publisher directory at dir: a root key and a release key
// (threshold 1 each), trust root version 1 signed by the root key.
func Init(dir string, o Options) (*Publisher, error) {
	o.defaults()
	if _, err := os.Stat(filepath.Join(dir, "keys")); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	for _, d := range []string{"keys", "roots", "channels"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	rootKey, err := crypto.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	relKey, err := crypto.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	if err := crypto.WriteSigningKeyFile(filepath.Join(dir, "keys", "root.key"), rootKey); err != nil {
		return nil, err
	}
	if err := crypto.WriteSigningKeyFile(filepath.Join(dir, "keys", "release.key"), relKey); err != nil {
		return nil, err
	}
	r := &crypto.Root{
		Version: 1,
		Expires: o.Now().Add(o.RootExpiry).Truncate(time.Second),
		Keys:    map[crypto.KeyID]crypto.PublicKey{rootKey.Public().ID(): rootKey.Public(), relKey.Public().ID(): relKey.Public()},
		Roles: map[string]crypto.Role{
			crypto.RoleRoot:    {KeyIDs: []crypto.KeyID{rootKey.Public().ID()}, Threshold: 1},
			crypto.RoleRelease: {KeyIDs: []crypto.KeyID{relKey.Public().ID()}, Threshold: 1},
		},
	}
	env, err := crypto.SignRoot(r, rootKey)
	if err != nil {
		return nil, err
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	if err := writeFile(rootPath(dir, 1), b, 0o644); err != nil {
		return nil, err
	}
	return Open(dir, o)
}

func rootPath(dir string, v uint64) string {
	return filepath.Join(dir, "roots", fmt.Sprintf("%04d.root", v))
}

// Open opens an existing publisher directory.
func Open(dir string, o Options) (*Publisher, error) {
	o.defaults()
	if _, err := os.Stat(filepath.Join(dir, "keys", "root.key")); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotPublisher, dir)
	}
	if err := recoverRotation(dir); err != nil {
		return nil, err
	}
	rootKey, err := crypto.ReadSigningKeyFile(filepath.Join(dir, "keys", "root.key"))
	if err != nil {
		return nil, err
	}
	relKey, err := crypto.ReadSigningKeyFile(filepath.Join(dir, "keys", "release.key"))
	if err != nil {
		return nil, err
	}
	p := &Publisher{dir: dir, rootKey: rootKey, relKey: relKey, limits: o.Limits, now: o.Now, log: o.Logger}
	entries, err := os.ReadDir(filepath.Join(dir, "roots"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPublisher, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, "roots", n))
		if err != nil {
			return nil, err
		}
		p.roots = append(p.roots, b)
	}
	if len(p.roots) == 0 {
		return nil, fmt.Errorf("%w: no trust root in %s", ErrNotPublisher, dir)
	}
	if p.root, err = protocol.VerifyRootChain(p.roots, p.limits); err != nil {
		return nil, fmt.Errorf("%s/roots: %w", dir, err)
	}
	if p.store, err = store.Open(filepath.Join(dir, "store"), store.Options{Logger: o.Logger}); err != nil {
		return nil, err
	}
	return p, nil
}

// Close releases the directory's store.
func (p *Publisher) Close() error { return p.store.Close() }

// Dir is the publisher directory.
func (p *Publisher) Dir() string { return p.dir }

// Roots returns the signed trust roots, oldest first. Devices start from
// the first (or any later one) and walk to the newest.
func (p *Publisher) Roots() [][]byte { return p.roots }

// Root is the current trust root.
func (p *Publisher) Root() *crypto.Root { return p.root }

// Store is the publisher's block store.
func (p *Publisher) Store() *store.Store { return p.store }

func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// channelSecret returns the channel's secret, creating it on first use.
func (p *Publisher) channelSecret(channel string) (*crypto.ChannelSecret, error) {
	dir := filepath.Join(p.dir, "channels", channel)
	path := filepath.Join(dir, "secret")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		var s crypto.ChannelSecret
		rand.Read(s[:])
		if err := writeFile(path, s[:], 0o600); err != nil {
			return nil, err
		}
		return &s, nil
	}
	if err != nil {
		return nil, err
	}
	var s crypto.ChannelSecret
	if len(b) != len(s) {
		return nil, fmt.Errorf("channel %q: secret file %s is damaged (%d bytes)", channel, path, len(b))
	}
	copy(s[:], b)
	return &s, nil
}

// channelState is a channel's durable record (secret: it holds keys).
type channelState struct {
	Keyring     []byte          `cbor:"1,keyasint"` // protocol.MarshalKeyringState
	Enrollments [][]byte        `cbor:"2,keyasint,omitempty"`
	Releases    []releaseRecord `cbor:"3,keyasint,omitempty"` // by sequence
}

type releaseRecord struct {
	Sequence  uint64 `cbor:"1,keyasint"`
	Version   string `cbor:"2,keyasint"`
	Manifest  []byte `cbor:"3,keyasint"`
	Key       []byte `cbor:"4,keyasint"` // the release key
	Content   bool   `cbor:"5,keyasint,omitempty"`
	BlockList []byte `cbor:"6,keyasint"`
}

func (p *Publisher) statePath(channel string) string {
	return filepath.Join(p.dir, "channels", channel, "state")
}

func (p *Publisher) loadChannel(channel string) (*channelState, *protocol.KeyringState, error) {
	if err := protocol.ValidateChannel(channel); err != nil {
		return nil, nil, err
	}
	var cs channelState
	err := statefile.Load(p.statePath(channel), &cs)
	if errors.Is(err, statefile.ErrNotFound) {
		ks, err := protocol.NewKeyringState(channel)
		if err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(filepath.Dir(p.statePath(channel)), 0o700); err != nil {
			return nil, nil, err
		}
		return &cs, ks, nil
	}
	if err != nil {
		return nil, nil, err
	}
	ks, err := protocol.ParseKeyringState(cs.Keyring)
	if err != nil {
		return nil, nil, fmt.Errorf("channel %q keyring: %w", channel, err)
	}
	return &cs, ks, nil
}

func (p *Publisher) saveChannel(channel string, cs *channelState, ks *protocol.KeyringState) error {
	b, err := protocol.MarshalKeyringState(ks)
	if err != nil {
		return err
	}
	cs.Keyring = b
	if err := statefile.Save(p.statePath(channel), cs); err != nil {
		return err
	}
	return os.Chmod(p.statePath(channel), 0o600)
}

// Device is an enrolled device as listed by Devices.
type Device struct {
	ID   protocol.DeviceID `json:"id"`
	Name string            `json:"name,omitempty"`
}

// AddDevice enrolls the device of an enrollment string (from `meshota
// device init`) in channel and returns its ID.
func (p *Publisher) AddDevice(channel, enrollment string) (protocol.DeviceID, error) {
	e, err := protocol.ParseEnrollmentText(enrollment, p.limits)
	if err != nil {
		return protocol.DeviceID{}, err
	}
	cs, ks, err := p.loadChannel(channel)
	if err != nil {
		return protocol.DeviceID{}, err
	}
	if err := ks.Enroll(e); err != nil {
		return protocol.DeviceID{}, err
	}
	raw, err := enrollmentBinary(enrollment)
	if err != nil {
		return protocol.DeviceID{}, err
	}
	cs.Enrollments = replaceEnrollment(cs.Enrollments, e.Device, raw, p.limits)
	return e.Device, p.saveChannel(channel, cs, ks)
}

func replaceEnrollment(list [][]byte, id protocol.DeviceID, raw []byte, l protocol.Limits) [][]byte {
	out := list[:0:0]
	for _, b := range list {
		if e, err := protocol.ParseEnrollment(b, l); err == nil && e.Device == id {
			continue
		}
		out = append(out, b)
	}
	if raw != nil {
		out = append(out, raw)
	}
	return out
}

// Revoke removes a device from channel and starts a new epoch: it can open
// nothing published afterwards.
func (p *Publisher) Revoke(channel string, id protocol.DeviceID) error {
	cs, ks, err := p.loadChannel(channel)
	if err != nil {
		return err
	}
	if err := ks.Revoke(id); err != nil {
		if errors.Is(err, protocol.ErrNotInKeyring) {
			return fmt.Errorf("%w: %s in %q", ErrUnknownDevice, id, channel)
		}
		return err
	}
	cs.Enrollments = replaceEnrollment(cs.Enrollments, id, nil, p.limits)
	return p.saveChannel(channel, cs, ks)
}

// Devices lists channel's enrolled devices.
func (p *Publisher) Devices(channel string) ([]Device, error) {
	cs, _, err := p.loadChannel(channel)
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, b := range cs.Enrollments {
		e, err := protocol.ParseEnrollment(b, p.limits)
		if err != nil {
			return nil, err
		}
		out = append(out, Device{ID: e.Device, Name: e.Name})
	}
	return out, nil
}

// Channels lists the publisher's channels.
func (p *Publisher) Channels() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(p.dir, "channels"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// enrollmentBinary returns the signed record inside an enrollment string.
func enrollmentBinary(text string) ([]byte, error) {
	t := strings.Join(strings.Fields(text), "")
	rest, ok := strings.CutPrefix(t, protocol.EnrollmentTextPrefix)
	if !ok {
		return nil, fmt.Errorf("enrollment must start with %q", protocol.EnrollmentTextPrefix)
	}
	return base64.RawURLEncoding.DecodeString(rest)
}
