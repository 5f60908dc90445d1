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
// bounded by the 4 MiB read-ahead buffers that about 3 × Workers plaintext
// chunks in flight are slices of (two or three buffers),
// up to 80 blocks queued for or being stored (≈ 20 MiB; into a pack store,
// whose block buffers are reused at their full 512 KiB, ≈ 40 MiB), plus the index
// it builds (≈ 150 B per chunk).
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Pipeline: this goroutine walks the tree and chunks each file into
	// pooled buffers; workers hash, derive, encrypt and address each chunk
	// in parallel; one writer stores the blocks in batches. Channels are
	// bounded, so memory is a few chunks per worker plus two store batches.
	x := &Index{Channel: opt.Channel}
	var slots []*Chunk
	jobs := make(chan sealJob, 2*workers)
	// A store that copies what it is given lets the block buffers be used
	// again once their batch is stored (no allocation, clearing and
	// collection of 256 MiB of ciphertext per 256 MiB published).
	var stored func([]blocks.Block)
	free := make(chan []byte, 3*publishBatch) // at most what the block writer holds
	newBuf := func(n int) []byte { return make([]byte, 0, n+crypto.ChunkOverhead) }
	if c, ok := bs.(copyingStore); ok && c.CopiesBlocks() {
		newBuf = func(int) []byte {
			select {
			case b := <-free:
				return b
			default:
				return make([]byte, 0, MaxChunkSize+crypto.ChunkOverhead)
			}
		}
		stored = func(bs []blocks.Block) {
			for _, b := range bs {
				select {
				case free <- b.RawData()[:0]:
				default:
				}
			}
		}
	}
	prepare := preparer(bs)
	w := newBlockWriter(ctx, bs, publishBatch, cancel, stored)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() == nil {
					c, b := sealChunkTo(newBuf(len(j.data)), opt.Secret, opt.Channel, j.data)
					*j.slot = c
					w.add(prepare(b))
				}
				j.buf.release()
			}
		})
	}
	var read uint64 // plaintext bytes chunked so far, for opt.Progress
	sp := newSplitter(nil)
	walkErr := walkRelease(ctx, opt.Source, func(e Entry, abs string) error {
		if e.Type == TypeFile && e.Size > 0 {
			e.FirstChunk = uint64(len(slots))
			n, size, err := chunkFile(ctx, sp, abs, jobs, &slots, func(n int) {
				read += uint64(n)
				if opt.Progress != nil {
					opt.Progress(read)
				}
			})
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
	close(jobs)
	wg.Wait()
	storeErr := w.close()
	if walkErr != nil {
		if cause := context.Cause(ctx); storeErr != nil && cause != nil && errors.Is(walkErr, context.Canceled) {
			walkErr = cause
		}
		return nil, fmt.Errorf("publish: %w", walkErr)
	}
	if storeErr != nil {
		return nil, fmt.Errorf("publish: %w", storeErr)
	}
	if ctx.Err() != nil { // cancelled after the walk: some chunks were not sealed
		return nil, fmt.Errorf("publish: %w", context.Cause(ctx))
	}
	x.Chunks = make([]Chunk, len(slots))
	for i, s := range slots {
		x.Chunks[i] = *s
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("publish: %w", err) // a bug, or the tree changed underneath
	}

	rel := &Release{Key: crypto.NewSymmetricKey(), Index: x, Size: x.Size()}
	d, err := computeDelta(ctx, x, opt.Previous)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	rel.Delta = d
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
	if err := putBlocks(ctx, bs, append(append(pages, root), append(lpages, lroot)...)); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	rel.IndexRoot, rel.BlockListRoot = root.Cid(), lroot.Cid()
	rel.Blocks = len(sortCIDs(all)) + len(lpages) + 1
	log.InfoContext(ctx, "published release", "channel", opt.Channel, "index", rel.IndexRoot,
		"blocklist", rel.BlockListRoot, "bytes", rel.Size, "chunks", len(x.Chunks),
		"new_chunks", rel.Delta.NewChunks, "new_bytes", rel.Delta.NewBytes)
	return rel, nil
}

type sealJob struct {
	slot *Chunk
	buf  *readAhead // data is inside it; released once sealed
	data []byte
}

// chunkFile reads one file through the splitter and queues each chunk for
// sealing. It returns the number of chunks and bytes.
func chunkFile(ctx context.Context, sp *splitter, abs string, jobs chan<- sealJob, slots *[]*Chunk, progress func(int)) (uint64, uint64, error) {
	f, err := os.Open(abs)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sp.reset(f)
	var n, size uint64
	for {
		data, buf, err := sp.nextShared()
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
		progress(len(data))
		select {
		case jobs <- sealJob{slot: slot, buf: buf, data: data}:
		case <-ctx.Done():
			buf.release()
			return 0, 0, ctx.Err()
		}
	}
}

// copyingStore is a BlockStore that copies a block's bytes when it stores
// them and keeps no reference to them (content/store's pack store).
type copyingStore interface {
	CopiesBlocks() bool
}

// preparingStore is a BlockStore with per-block work best done where the
// block's bytes were just written, while they are in the CPU's cache: the
// pack store's record checksum. Publish's workers call it right after
// sealing a block, assembly's right after verifying one; the block's
// bytes do not change until it is stored.
type preparingStore interface {
	PrepareBlock(blocks.Block) blocks.Block
}

// preparer is bs's PrepareBlock, or a no-op for stores without one.
func preparer(bs BlockStore) func(blocks.Block) blocks.Block {
	if p, ok := bs.(preparingStore); ok {
		return p.PrepareBlock
	}
	return func(b blocks.Block) blocks.Block { return b }
}

// chunkBufs holds plaintext chunk buffers of MaxChunkSize bytes (assembly;
// publish's chunks are slices of the splitter's read-ahead).
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, MaxChunkSize); return &b }}

func getChunkBuf() *[]byte  { return chunkBufs.Get().(*[]byte) }
func putChunkBuf(b *[]byte) { chunkBufs.Put(b) }

func computeDelta(ctx context.Context, x, prev *Index) (Delta, error) {
	var old map[cid.Cid]struct{}
	if prev != nil {
		old = make(map[cid.Cid]struct{}, min(prev.NumChunks(), 1<<20))
		cur := prev.cursor(ctx)
		for i := range prev.NumChunks() {
			c, err := cur.at(i)
			if err != nil {
				return Delta{}, fmt.Errorf("previous index: %w", err)
			}
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
	return d, nil
}
