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
	if _, err := content.Assemble(ctx, dev.Blockstore(), src, x, filepath.Join(dir, "stage"), content.AssembleOptions{Window: 4}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// TestSIGKILLResume kills a real assembling process with SIGKILL at a random
// point, then resumes in this process: every block the child stored is
// intact, none of them is fetched again, and the staged tree is complete.
func TestSIGKILLResume(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in child")
	}
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
	os.WriteFile(filepath.Join(dir, "release"), []byte(rel.IndexRoot.String()+" "+hex.EncodeToString(rel.Key[:])), 0o600)

	killAfter := 2 + r.IntN(nblocks/2)
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
	if len(had) == 0 {
		t.Fatal("the child stored nothing; the kill came too early to test resume")
	}
	src := &countingSource{src: content.StoreSource{Getter: pub.Blockstore()}, got: map[cid.Cid]int{}}
	x, err := content.OpenIndex(ctx, dev.Blockstore(), src, rel.IndexRoot, &rel.Key, channel)
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, "stage")
	if _, err := content.Assemble(ctx, dev.Blockstore(), src, x, stage, content.AssembleOptions{}); err != nil {
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
