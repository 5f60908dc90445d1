package netlab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the program run inside namespaces:
// NETLAB_HELPER=sink listens and counts bytes; =send connects and sends.
func TestMain(m *testing.M) {
	switch os.Getenv("NETLAB_HELPER") {
	case "sink":
		ln, err := net.Listen("tcp", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "%d", n)
				c.Close()
			}()
		}
	case "send":
		n, _ := strconv.Atoi(os.Getenv("NETLAB_BYTES"))
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.Dial("tcp", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(2)
		}
		start := time.Now()
		if _, err := io.CopyN(c, zeroReader{}, int64(n)); err != nil {
			fmt.Println("send:", err)
			os.Exit(3)
		}
		c.(*net.TCPConn).CloseWrite()
		ack, _ := io.ReadAll(c)
		fmt.Printf("%s %d\n", ack, time.Since(start).Milliseconds())
		os.Exit(0)
	case "udpecho":
		c, err := net.ListenPacket("udp", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening")
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			c.WriteTo(buf[:n], from)
		}
	case "udpping":
		c, err := net.Dial("udp", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(2)
		}
		buf := make([]byte, 16)
		for range 3 {
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
				os.Exit(0)
			}
		}
		fmt.Println("no echo")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func startSink(t *testing.T, h *Host, port int) string { return startHelper(t, h, "sink", port) }

// startHelper runs this binary as helper (a TCP sink or a UDP echo) on
// h's port and returns its address once it listens.
func startHelper(t *testing.T, h *Host, helper string, port int) string {
	t.Helper()
	addr := fmt.Sprintf("%s:%d", h.IP(), port)
	cmd := h.Command(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), "NETLAB_HELPER="+helper, "NETLAB_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 10)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "listening\n" {
		t.Fatalf("%s did not start: %q %v", helper, line, err)
	}
	return addr
}

// send transfers n bytes from h to addr and returns the bytes the sink
// counted and the transfer time, or an error if no connection was made.
func send(t *testing.T, h *Host, addr string, n int) (int, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := h.Command(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "NETLAB_HELPER=send", "NETLAB_ADDR="+addr, "NETLAB_BYTES="+strconv.Itoa(n))
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
	}
	var got, ms int
	if _, err := fmt.Sscanf(out.String(), "%d %d", &got, &ms); err != nil {
		return 0, 0, fmt.Errorf("bad output %q", out.String())
	}
	return got, time.Duration(ms) * time.Millisecond, nil
}

func TestShapedSitesPartitionAndCleanup(t *testing.T) {
	l := New(t)
	s1 := mustSite(t, l, SiteOptions{Uplink: 2 * Mbit, Downlink: 20 * Mbit})
	s2 := mustSite(t, l, SiteOptions{})
	seed := mustHost(t, l, nil, HostOptions{})
	a1 := mustHost(t, l, s1, HostOptions{})
	a2 := mustHost(t, l, s1, HostOptions{})
	b1 := mustHost(t, l, s2, HostOptions{})
	seedAddr := startSink(t, seed, 9000)
	a2Addr := startSink(t, a2, 9000)
	b1Addr := startSink(t, b1, 9000)

	// Through the 2 Mbit/s uplink, 500 kB cannot take less than 2 s.
	const n = 500_000
	got, d, err := send(t, a1, seedAddr, n)
	if err != nil || got != n {
		t.Fatalf("site->seed: %d bytes, %v", got, err)
	}
	if floor := time.Duration(float64(n*8) / float64(2*Mbit) * 0.9 * float64(time.Second)); d < floor {
		t.Fatalf("500 kB through a 2 Mbit/s uplink took %v, below the physical floor %v: shaping is not applied", d, floor)
	}
	t.Logf("500 kB over the 2 Mbit/s uplink: %v (%.2f Mbit/s)", d, float64(n*8)/d.Seconds()/1e6)
	// Site to site crosses both routers.
	if got, _, err := send(t, b1, a2Addr, 1000); err != nil || got != 1000 {
		t.Fatalf("site2->site1: %d, %v", got, err)
	}

	if err := s1.Partition(true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := send(t, a1, seedAddr, 1000); err == nil {
		t.Fatal("a partitioned site reached the seed")
	}
	if _, _, err := send(t, a1, b1Addr, 1000); err == nil {
		t.Fatal("a partitioned site reached another site")
	}
	if got, _, err := send(t, a1, a2Addr, 1000); err != nil || got != 1000 {
		t.Fatalf("inside a partitioned site: %d, %v", got, err)
	}
	if err := s1.Partition(false); err != nil {
		t.Fatal(err)
	}
	if got, _, err := send(t, a1, seedAddr, 1000); err != nil || got != 1000 {
		t.Fatalf("after healing: %d, %v", got, err)
	}

	id := l.id
	l.Close()
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), id) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
}

func TestLossDropsPackets(t *testing.T) {
	l := New(t)
	s := mustSite(t, l, SiteOptions{})
	a := mustHost(t, l, s, HostOptions{})
	b := mustHost(t, l, s, HostOptions{})
	if err := b.SetLoss(100); err != nil {
		t.Fatal(err)
	}
	addr := startSink(t, b, 9000)
	if _, _, err := send(t, a, addr, 100); err == nil {
		t.Fatal("100% loss let a connection through")
	}
	if err := b.SetLoss(5); err != nil {
		t.Fatal(err)
	}
	// TCP recovers from 5% loss: every byte still arrives.
	if got, _, err := send(t, a, addr, 2_000_000); err != nil || got != 2_000_000 {
		t.Fatalf("5%% loss: %d bytes, %v", got, err)
	}
}

// udpEchoes tells whether a datagram from h to addr comes back.
func udpEchoes(t *testing.T, h *Host, addr string) bool {
	t.Helper()
	cmd := h.Command(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), "NETLAB_HELPER=udpping", "NETLAB_ADDR="+addr)
	return cmd.Run() == nil
}

func TestBlockUDPAndCounters(t *testing.T) {
	l := New(t)
	s := mustSite(t, l, SiteOptions{Uplink: 20 * Mbit, Downlink: 20 * Mbit})
	seed := mustHost(t, l, nil, HostOptions{})
	a := mustHost(t, l, s, HostOptions{})
	b := mustHost(t, l, s, HostOptions{})
	seedUDP, bUDP := startHelper(t, seed, "udpecho", 9001), startHelper(t, b, "udpecho", 9001)
	seedTCP := startSink(t, seed, 9000)
	if !udpEchoes(t, a, seedUDP) {
		t.Fatal("no UDP through an open site")
	}
	if err := s.BlockUDP(true); err != nil {
		t.Fatal(err)
	}
	if udpEchoes(t, a, seedUDP) {
		t.Fatal("UDP crossed a site that blocks it")
	}
	if !udpEchoes(t, a, bUDP) {
		t.Fatal("blocking the site's UDP blocked its LAN")
	}
	const n = 1_000_000
	before, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := send(t, a, seedTCP, n); err != nil || got != n {
		t.Fatalf("TCP through a site that blocks UDP: %d bytes, %v", got, err)
	}
	after, err := a.Counters()
	if err != nil {
		t.Fatal(err)
	}
	_, up, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if sent := after.TxBytes - before.TxBytes; sent < n || up.TxBytes < n {
		t.Fatalf("counted %d bytes sent by the host and %d by the site's uplink for a %d-byte transfer", sent, up.TxBytes, n)
	}
	if err := s.BlockUDP(false); err != nil {
		t.Fatal(err)
	}
	if !udpEchoes(t, a, seedUDP) {
		t.Fatal("no UDP after unblocking")
	}
}

// mustSite and mustHost add to lab l, failing the test on an error.
func mustSite(t *testing.T, l *Lab, o SiteOptions) *Site {
	t.Helper()
	s, err := l.AddSite(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustHost(t *testing.T, l *Lab, s *Site, o HostOptions) *Host {
	t.Helper()
	h, err := l.AddHost(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
