package store

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/meshota/meshota/content"
	"github.com/meshota/meshota/crypto"
)

const crashEnv = "MESHOTA_CONTENT_CRASH_CHILD"

// reportingSource delays each block a little and prints a line once the
// block is handed to the assembly, so the parent knows when to kill.
type reportingSource struct{ src content.BlockSource }

func (s reportingSource) GetBlocks(ctx context.Context, cids []cid.Cid) <-chan blocks.Block {
	in := s.src.GetBlocks(ctx, cids)
	out := make(chan blocks.Block)
	go func() {
		defer close(out)
		for b := range in {
			time.Sleep(3 * time.Millisecond)
			out <- b
			fmt.Println("delivered", b.Cid())
		}
	}()
	return out
}

// TestCrashChild is the child process of TestSIGKILLResume; it does
// nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestSIGKILLResume")
	}
	ctx := context.Background()
	f, _ := os.ReadFile(filepath.Join(dir, "release"))
	parts := strings.Fields(string(f))
	root, _ := cid.Decode(parts[0])
	var key crypto.SymmetricKey
	hex.Decode(key[:], []byte(parts[1]))
	pub := openStore(t, filepath.Join(dir, "pub"))
	dev := openStore(t, filepath.Join(dir, "dev"))
	src := reportingSource{content.StoreSource{Getter: pub.Blockstore()}}
	x, err := content.OpenIndex(ctx, dev.Blockstore(), src, root, &key, channel)
	if err != nil {
		t.Fatal(err)
	}
	opt := content.AssembleOptions{Window: 4, PlaintextOnly: len(parts) > 2 && parts[2] == "plaintext"}
	if _, err := content.Assemble(ctx, dev.Blockstore(), src, x, filepath.Join(dir, "stage"), opt); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// TestSIGKILLResume kills a real assembling process with SIGKILL at a random
// point, then resumes in this process: every block the child stored is
// intact, none of them is fetched again, and the staged tree is complete.
// With PlaintextOnly, "stored" means written to staging and hashing to
// the index's plaintext hash (the page cache survives a SIGKILL), and no
// chunk block is in the store.
func TestSIGKILLResume(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in child")
	}
	for _, mode := range []string{"blocks", "plaintext"} {
		t.Run(mode, func(t *testing.T) { testSIGKILLResume(t, mode == "plaintext") })
	}
}

func testSIGKILLResume(t *testing.T, plain bool) {
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	pub := openStore(t, filepath.Join(dir, "pub"))
	files := map[string][]byte{}
	for i := range 8 {
		files["f"+strconv.Itoa(i)] = randBytes(r, 200_000+r.IntN(1_500_000))
	}
	rel := publishFiles(t, pub, files)
	nblocks := len(rel.Index.Chunks)
	pub.Close()
	mode := "blocks"
	if plain {
		mode = "plaintext"
	}
	os.WriteFile(filepath.Join(dir, "release"), []byte(rel.IndexRoot.String()+" "+hex.EncodeToString(rel.Key[:])+" "+mode), 0o600)

	killAfter := 2 + r.IntN(nblocks/2) // the index's root and page first
	if plain {
		// A chunk is in staging a moment after its delivery: let a few
		// be delivered 3 ms apart, or nothing is there to resume from.
		killAfter += 4
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	seen := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "delivered ") {
			seen++
		}
		if seen >= killAfter || sc.Text() == "done" {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	if seen < killAfter {
		t.Fatalf("child delivered only %d blocks before exiting", seen)
	}
	t.Logf("killed the child after %d of %d chunk blocks", seen, nblocks)

	pub = openStore(t, filepath.Join(dir, "pub"))
	defer pub.Close()
	dev := openStore(t, filepath.Join(dir, "dev"))
	defer dev.Close()
	had := allKeys(t, dev)
	for c := range had {
		b, err := dev.Blockstore().Get(ctx, c)
		if err != nil || content.VerifyBlock(c, b.RawData()) != nil {
			t.Errorf("block %s damaged by the kill: %v", c, err)
		}
	}
	stage := filepath.Join(dir, "stage")
	if plain {
		for _, c := range rel.Index.Chunks {
			if had[c.CID] {
				t.Errorf("chunk block %s in the store of a plaintext-only device", c.CID)
			}
		}
		had = stagedChunks(t, rel.Index, stage)
	}
	if len(had) == 0 {
		t.Fatal("the child stored nothing; the kill came too early to test resume")
	}
	src := &countingSource{src: content.StoreSource{Getter: pub.Blockstore()}, got: map[cid.Cid]int{}}
	x, err := content.OpenIndex(ctx, dev.Blockstore(), src, rel.IndexRoot, &rel.Key, channel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.Assemble(ctx, dev.Blockstore(), src, x, stage, content.AssembleOptions{PlaintextOnly: plain}); err != nil {
		t.Fatal(err)
	}
	for c, n := range src.got {
		if had[c] {
			t.Errorf("block %s was stored before the kill and fetched again", c)
		}
		if n != 1 {
			t.Errorf("block %s fetched %d times", c, n)
		}
	}
	if err := content.VerifyStaged(ctx, x, stage); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		got, _ := os.ReadFile(filepath.Join(stage, name))
		if string(got) != string(data) {
			t.Errorf("%s differs after resume", name)
		}
	}
}

// stagedChunks returns the chunk blocks whose plaintext is in staging at
// its place, hashing to the index's plaintext hash.
func stagedChunks(t *testing.T, x *content.Index, stage string) map[cid.Cid]bool {
	t.Helper()
	out := map[cid.Cid]bool{}
	for _, e := range x.Entries {
		data, err := os.ReadFile(filepath.Join(stage, filepath.FromSlash(e.Path)))
		if err != nil {
			continue
		}
		var off int
		for _, c := range x.Chunks[e.FirstChunk : e.FirstChunk+e.NumChunks] {
			end := off + int(c.Len)
			if end <= len(data) && crypto.HashChunk(data[off:end]) == c.Hash {
				out[c.CID] = true
			}
			off = end
		}
	}
	return out
}
