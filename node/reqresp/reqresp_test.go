package reqresp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestRequestResponse(t *testing.T) {
	server, client := newHost(t), newHost(t)
	const id = "/meshota/test/1"
	Serve(server, id, 16, nil, func(_ context.Context, from peer.ID, req []byte) ([]byte, error) {
		if from != client.ID() {
			t.Errorf("handler saw peer %s, want %s", from, client.ID())
		}
		if string(req) == "fail" {
			return nil, errors.New("no manifest for that channel")
		}
		return bytes.Repeat(req, 3), nil
	})
	if err := client.Connect(t.Context(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		req     []byte
		maxResp int
		want    []byte
		wantErr error
	}{
		{"echo", []byte("abc"), 100, []byte("abcabcabc"), nil},
		{"empty", []byte{}, 100, []byte{}, nil},
		{"remote error", []byte("fail"), 100, nil, ErrRemote},
		{"response over limit", []byte("abcdef"), 10, nil, ErrTooLarge},
		{"request over server limit", bytes.Repeat([]byte("x"), 17), 100, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Request(t.Context(), client, server.ID(), id, c.req, c.maxResp)
			if c.name == "request over server limit" {
				if err == nil {
					t.Fatal("server answered an oversized request")
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if c.wantErr == nil && !bytes.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestUnknownProtocolFails(t *testing.T) {
	server, client := newHost(t), newHost(t)
	if err := client.Connect(t.Context(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Request(t.Context(), client, server.ID(), "/meshota/none/1", nil, 10); err == nil {
		t.Fatal("request on an unserved protocol succeeded")
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	WriteFrame(&buf, []byte("hello"))
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1024)
		if err != nil {
			return
		}
		if len(b) > 1024 {
			t.Fatalf("frame of %d bytes passed a 1024 limit", len(b))
		}
		var again bytes.Buffer
		WriteFrame(&again, b)
		if !bytes.HasPrefix(data, again.Bytes()) {
			t.Fatalf("re-encoding %x is not a prefix of the input %x", again.Bytes(), data)
		}
	})
}
