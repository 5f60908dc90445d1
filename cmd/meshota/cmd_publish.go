package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/meshota/meshota/node/publisher"
	"github.com/meshota/meshota/node/seed"
)

func init() {
	c := &command{
		Name:    "publish",
		Summary: "encrypt, sign and ship a release",
		Usage: `Usage: meshota publish --dir P --channel C --version V [--rollout PCT] [--expires DUR]
                       PATH (--seed ADMIN_ADDR --token-file S/admin.token | --out release.car)

Cuts PATH (a file or directory) into content-defined chunks, encrypts them
(unchanged chunks keep their ciphertext: devices fetch only what changed),
seals the release key for the channel's enrolled devices, signs the
manifest and pushes the release to a running seed's admin API, or writes a
CAR bundle for an air-gapped seed (meshota seed --import).

Examples:
  meshota publish --dir ./publisher --channel stable --version 1.2.0 ./build --seed 127.0.0.1:7070 --token-file ./seed/admin.token
  meshota publish --dir ./publisher --channel stable --version 1.3.0 --rollout 10 ./build --out r13.car`,
	}
	c.Run = func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet(c, e)
		rf := addReleaseFlags(fs)
		version := fs.String("version", "", "semantic version of the release (required)")
		rollout := fs.Float64("rollout", 100, "share of the fleet, in percent (0.01 to 100)")
		if err := parseArgs(fs, args); err != nil {
			return err
		}
		if err := rf.check(*version != "" && fs.NArg() == 1, ", --version, one PATH"); err != nil {
			return err
		}
		bp, err := percentToBasisPoints(*rollout)
		if err != nil {
			return err
		}
		p, err := rf.open()
		if err != nil {
			return err
		}
		defer p.Close()
		bar := newProgress(e.Stderr, "publishing", treeSize(fs.Arg(0)))
		res, err := p.Publish(ctx, publisher.Request{Channel: rf.channel, Version: *version, Source: fs.Arg(0),
			RolloutBasisPoints: bp, Expires: rf.expires, Progress: bar.update})
		bar.done()
		if err != nil {
			return err
		}
		d := res.Delta
		fmt.Fprintf(e.Stdout, "published %s %s (sequence %d): %s in %d chunks, %d new (%s), %d reused (%.1f%% of bytes), %v\n",
			rf.channel, res.Version, res.Sequence, humanBytes(res.Size), d.Chunks, d.NewChunks, humanBytes(d.NewBytes),
			d.Chunks-d.NewChunks, 100*d.ReusedFraction(), res.Took.Round(time.Millisecond))
		return rf.ship(ctx, e, p)
	}
	register(c)
}

func percentToBasisPoints(pct float64) (uint16, error) {
	if pct <= 0 || pct > 100 {
		return 0, fmt.Errorf("%w: rollout must be above 0 and at most 100 percent", errUsage)
	}
	return uint16(pct*100 + 0.5), nil
}

// ship sends the channel's latest release to a seed, or to a CAR file.
func ship(ctx context.Context, e *env, p *publisher.Publisher, channel, seedAddr, tokenFile, out string) error {
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if err := p.WriteBundle(ctx, f, channel); err != nil {
			f.Close()
			os.Remove(out)
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "wrote %s\n", out)
		return nil
	}
	token, err := adminToken(tokenFile)
	if err != nil {
		return err
	}
	res, err := pushBundle(ctx, seedAddr, token, func(w io.Writer) error { return p.WriteBundle(ctx, w, channel) })
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "seed %s took %s %s (sequence %d): %d blocks, %s, %d devices enrolled\n",
		seedAddr, res.Channel, res.Version, res.Sequence, res.Blocks, humanBytes(res.Bytes), res.Devices)
	return nil
}

// adminToken reads the seed's admin token from file, or from
// MESHOTA_ADMIN_TOKEN.
func adminToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if tok := os.Getenv("MESHOTA_ADMIN_TOKEN"); tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("%w: the seed's admin token is needed: --token-file SEED_DIR/admin.token or MESHOTA_ADMIN_TOKEN", errUsage)
}

func pushBundle(ctx context.Context, addr, token string, write func(io.Writer) error) (*seed.ImportResult, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/admin/import", pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/vnd.ipld.car")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the seed's admin API at %s: %w (is meshota seed running with --admin %s?)", addr, err, addr)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("seed refused the release (%s): %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var res seed.ImportResult
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&res); err != nil {
		return nil, fmt.Errorf("seed answer: %w", err)
	}
	return &res, nil
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
