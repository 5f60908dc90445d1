package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/meshota/meshota/content/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// flatDir is a go-datastore keeping one file per key, the layout of
// go-ds-flatfs (which does not build against go-datastore v0.9.2): key
// "/NAME" lives in dir/XY/NAME, XY being the next-to-last two characters of
// NAME. A Put writes a temporary file, fsyncs it, renames it into place and
// fsyncs the shard directory, so after a crash a key holds either its whole
// value or nothing. It holds no value in memory and Has is one stat.
type flatDir struct {
	dir    string
	shards sync.Map // shard directories known to exist
}

var _ ds.Batching = (*flatDir)(nil)

func openFlatDir(dir string) (*flatDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Temporary files of writes a crash interrupted are garbage.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return &flatDir{dir: dir}, nil
}

func validName(name string) bool {
	if len(name) < 3 || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '=' || r == '+') {
			return false
		}
	}
	return true
}

func (d *flatDir) path(k ds.Key) (shard, file string, err error) {
	name := strings.TrimPrefix(k.String(), "/")
	if !validName(name) {
		return "", "", fmt.Errorf("flat datastore: key %q is not a single plain name", k)
	}
	shard = filepath.Join(d.dir, name[len(name)-3:len(name)-1])
	return shard, filepath.Join(shard, name), nil
}

func (d *flatDir) Put(ctx context.Context, k ds.Key, value []byte) error {
	shard, file, err := d.path(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(shard, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(shard, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(value)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return atomicfile.SyncDir(shard)
}

func (d *flatDir) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	_, file, err := d.path(k)
	if err != nil {
		return nil, ds.ErrNotFound
	}
	v, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ds.ErrNotFound
	}
	return v, err
}

func (d *flatDir) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, file, err := d.path(k)
	if err != nil {
		return false, nil
	}
	_, err = os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (d *flatDir) GetSize(ctx context.Context, k ds.Key) (int, error) {
	_, file, err := d.path(k)
	if err != nil {
		return -1, ds.ErrNotFound
	}
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, ds.ErrNotFound
	}
	if err != nil {
		return -1, err
	}
	return int(fi.Size()), nil
}

func (d *flatDir) Delete(ctx context.Context, k ds.Key) error {
	_, file, err := d.path(k)
	if err != nil {
		return nil
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Query lists every key (and value unless KeysOnly), then applies the
// query's filters, orders, offset and limit naively.
func (d *flatDir) Query(ctx context.Context, q query.Query) (query.Results, error) {
	return naiveQuery(ctx, q, func(yield func(string) bool) error {
		shards, err := os.ReadDir(d.dir)
		if err != nil {
			return err
		}
		for _, s := range shards {
			if !s.IsDir() {
				continue
			}
			ents, err := os.ReadDir(filepath.Join(d.dir, s.Name()))
			if err != nil {
				return err
			}
			for _, e := range ents {
				if !strings.HasPrefix(e.Name(), ".tmp-") && validName(e.Name()) && !yield("/"+e.Name()) {
					return nil
				}
			}
		}
		return nil
	}, func(key string) ([]byte, error) { return d.Get(ctx, ds.RawKey(key)) }), nil
}

func (d *flatDir) Sync(ctx context.Context, prefix ds.Key) error { return nil } // every Put is synced
func (d *flatDir) Close() error                                  { return nil }

// Batch returns a batch whose Commit writes every value to a temporary
// file (in parallel), makes them durable with one syncfs(2) instead of one
// fsync per file, renames them into place and makes the renames durable
// with a second syncfs. After a crash a key holds its whole value or is
// absent; leftover temporary files are removed at open.
func (d *flatDir) Batch(ctx context.Context) (ds.Batch, error) {
	return &flatBatch{d: d, puts: map[ds.Key][]byte{}}, nil
}

type flatBatch struct {
	d       *flatDir
	puts    map[ds.Key][]byte
	deletes []ds.Key
}

func (b *flatBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	b.puts[k] = v
	return nil
}

func (b *flatBatch) Delete(ctx context.Context, k ds.Key) error {
	delete(b.puts, k)
	b.deletes = append(b.deletes, k)
	return nil
}

func (b *flatBatch) Commit(ctx context.Context) error {
	type pending struct {
		tmp, file string
		v         []byte
	}
	todo := make([]pending, 0, len(b.puts))
	for k, v := range b.puts {
		_, file, err := b.d.path(k)
		if err != nil {
			return err
		}
		todo = append(todo, pending{file: file, v: v})
	}
	defer func() {
		for _, p := range todo {
			if p.tmp != "" {
				os.Remove(p.tmp) // no-op once renamed
			}
		}
	}()
	// Temporary files are written on all cores: copying the values into
	// the page cache is most of a commit's CPU time.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range todo {
		g.Go(func() error {
			tmp, err := b.d.writeTemp(filepath.Dir(todo[i].file), todo[i].v)
			todo[i].tmp = tmp
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(todo) > 0 {
		// Contents durable before any name points to them...
		if err := syncFS(b.d.dir); err != nil {
			return err
		}
		for i, p := range todo {
			if err := os.Rename(p.tmp, p.file); err != nil {
				return err
			}
			todo[i].tmp = ""
		}
		// ...and the names durable before Commit returns: one syncfs
		// commits every touched shard directory at once.
		if err := syncFS(b.d.dir); err != nil {
			return err
		}
	}
	for _, k := range b.deletes {
		if err := b.d.Delete(ctx, k); err != nil {
			return err
		}
	}
	b.puts, b.deletes = map[ds.Key][]byte{}, nil
	return nil
}

// writeTemp writes v to a new temporary file in shard (created if needed)
// and returns its name; the file is not synced.
func (d *flatDir) writeTemp(shard string, v []byte) (string, error) {
	if _, ok := d.shards.Load(shard); !ok {
		if err := os.MkdirAll(shard, 0o700); err != nil {
			return "", err
		}
		d.shards.Store(shard, true)
	}
	f, err := os.CreateTemp(shard, ".tmp-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncFS flushes the file system holding dir: one call for many files.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
