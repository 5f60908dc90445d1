package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/meshota/meshota/crypto"
)

// BlockStore is the part of boxo's blockstore.Blockstore content uses; the
// store of content/store and boxo's in-memory blockstore satisfy it.
type BlockStore interface {
	Getter
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Put(ctx context.Context, b blocks.Block) error
}

// PublishOptions says what to publish and how.
type PublishOptions struct {
	Channel string
	Secret  *crypto.ChannelSecret
	// Source is a regular file or a directory.
	Source string
	// Previous, when set, is the index of the channel's previous release;
	// Release.Delta then says how much of this release is new.
	Previous *Index
	// Workers bounds parallel chunk encryption; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called with the plaintext bytes read so far,
	// once per chunk, from the reading goroutine.
	Progress func(bytesRead uint64)
	Logger   *slog.Logger
}

// Release is the result of Publish: what a manifest needs and figures.
type Release struct {
	IndexRoot     cid.Cid             // root of the encrypted index
	BlockListRoot cid.Cid             // root of the cleartext block list
	Key           crypto.SymmetricKey // release key: seal it to the epoch key
	Index         *Index              // the plaintext index, for the next Delta
	Size          uint64              // plaintext bytes of all files
	Blocks        int                 // distinct blocks, list and index included
	Delta         Delta
}

// Delta compares a release's distinct chunks with its predecessor's.
// Without a predecessor every chunk is new.
type Delta struct {
	Chunks, NewChunks int    // distinct chunk blocks; those not in the previous release
	Bytes, NewBytes   uint64 // their plaintext bytes
}

// ReusedFraction is the share of chunk bytes already in the previous release.
func (d Delta) ReusedFraction() float64 {
	if d.Bytes == 0 {
		return 1
	}
	return float64(d.Bytes-d.NewBytes) / float64(d.Bytes)
}

// Publish chunks, encrypts and stores the release at opt.Source into bs,
// then stores its encrypted index and cleartext block list. Memory stays
// bounded by about (Workers+2) chunks plus the index (≈150 B per chunk).
func Publish(ctx context.Context, bs BlockStore, opt PublishOptions) (*Release, error) {
	if opt.Secret == nil {
		return nil, errors.New("publish: no channel secret; pass the channel's secret from the publisher key store")
	}
	if opt.Channel == "" {
		return nil, errors.New("publish: no channel name")
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)

	x := &Index{Channel: opt.Channel}
	var slots []*Chunk
	var read uint64 // plaintext bytes chunked so far, for opt.Progress
	w := newBatchWriter(bs)
	walkErr := walkRelease(gctx, opt.Source, func(e Entry, abs string) error {
		if e.Type == TypeFile && e.Size > 0 {
			e.FirstChunk = uint64(len(slots))
			n, size, err := chunkFile(gctx, g, abs, opt, w, &slots, &read)
			if err != nil {
				return err
			}
			if size != e.Size {
				return fmt.Errorf("publish: %s changed while being read (%d bytes, then %d); publish from a stable copy", e.Path, e.Size, size)
			}
			e.NumChunks = n
			if n == 0 {
				e.FirstChunk = 0
			}
		}
		x.Entries = append(x.Entries, e)
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := w.flush(ctx); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if walkErr != nil {
		return nil, fmt.Errorf("publish: %w", walkErr)
	}
	x.Chunks = make([]Chunk, len(slots))
	for i, s := range slots {
		x.Chunks[i] = *s
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("publish: %w", err) // a bug, or the tree changed underneath
	}

	rel := &Release{Key: crypto.NewSymmetricKey(), Index: x, Size: x.Size()}
	rel.Delta = computeDelta(x, opt.Previous)
	root, pages, err := sealIndex(x, &rel.Key)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	all := make([]cid.Cid, 0, len(x.Chunks)+len(pages)+1)
	for _, c := range x.Chunks {
		all = append(all, c.CID)
	}
	all = append(all, indexBlockCIDs(root, pages)...)
	lroot, lpages, err := buildBlockList(all)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	for _, b := range append(append(pages, root), append(lpages, lroot)...) {
		if err := bs.Put(ctx, b); err != nil {
			return nil, fmt.Errorf("publish: store block: %w", err)
		}
	}
	rel.IndexRoot, rel.BlockListRoot = root.Cid(), lroot.Cid()
	rel.Blocks = len(sortCIDs(all)) + len(lpages) + 1
	log.InfoContext(ctx, "published release", "channel", opt.Channel, "index", rel.IndexRoot,
		"blocklist", rel.BlockListRoot, "bytes", rel.Size, "chunks", len(x.Chunks),
		"new_chunks", rel.Delta.NewChunks, "new_bytes", rel.Delta.NewBytes)
	return rel, nil
}

// chunkFile reads one file through the chunker and schedules each chunk's
// encryption and storage on g. It returns the number of chunks and bytes.
func chunkFile(ctx context.Context, g *errgroup.Group, abs string, opt PublishOptions, w *batchWriter, slots *[]*Chunk, read *uint64) (uint64, uint64, error) {
	f, err := os.Open(abs)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sp := newSplitter(f)
	var n, size uint64
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		data, err := sp.NextBytes()
		if err == io.EOF {
			return n, size, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read %s: %w", abs, err)
		}
		slot := new(Chunk)
		*slots = append(*slots, slot)
		n++
		size += uint64(len(data))
		*read += uint64(len(data))
		if opt.Progress != nil {
			opt.Progress(*read)
		}
		g.Go(func() error {
			c, b := sealChunk(opt.Secret, opt.Channel, data)
			*slot = c
			return w.add(ctx, b)
		})
	}
}

func computeDelta(x, prev *Index) Delta {
	var old map[cid.Cid]struct{}
	if prev != nil {
		old = make(map[cid.Cid]struct{}, len(prev.Chunks))
		for _, c := range prev.Chunks {
			old[c.CID] = struct{}{}
		}
	}
	var d Delta
	seen := make(map[cid.Cid]struct{}, len(x.Chunks))
	for _, c := range x.Chunks {
		if _, dup := seen[c.CID]; dup {
			continue
		}
		seen[c.CID] = struct{}{}
		d.Chunks++
		d.Bytes += uint64(c.Len)
		if _, ok := old[c.CID]; !ok {
			d.NewChunks++
			d.NewBytes += uint64(c.Len)
		}
	}
	return d
}

// batchWriter groups stored blocks so that a store with synced writes
// (LevelDB) syncs once per batch rather than once per block.
type batchWriter struct {
	bs      BlockStore
	many    batchPutter
	mu      sync.Mutex
	pending []blocks.Block
}

const writeBatch = 16 // blocks: at most 8 MiB held

func newBatchWriter(bs BlockStore) *batchWriter {
	w := &batchWriter{bs: bs}
	w.many, _ = bs.(batchPutter)
	return w
}

func (w *batchWriter) add(ctx context.Context, b blocks.Block) error {
	if w.many == nil {
		if err := w.bs.Put(ctx, b); err != nil {
			return fmt.Errorf("store chunk: %w", err)
		}
		return nil
	}
	w.mu.Lock()
	w.pending = append(w.pending, b)
	var full []blocks.Block
	if len(w.pending) >= writeBatch {
		full, w.pending = w.pending, nil
	}
	w.mu.Unlock()
	if full != nil {
		if err := w.many.PutMany(ctx, full); err != nil {
			return fmt.Errorf("store chunks: %w", err)
		}
	}
	return nil
}

func (w *batchWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	rest := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(rest) == 0 || w.many == nil {
		return nil
	}
	if err := w.many.PutMany(ctx, rest); err != nil {
		return fmt.Errorf("store chunks: %w", err)
	}
	return nil
}
