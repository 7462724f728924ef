package topics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// Meta is what topic.json holds, and what the topic replies carry.
type Meta struct {
	ID        uint32 `json:"id"`
	Name      string `json:"name"`
	CreatedAt uint64 `json:"created_at"` // Unix seconds
	Epoch     uint32 `json:"topic_epoch"`
	// Retention is the topic's own limit; nil means the server default.
	Retention *Retention `json:"retention,omitempty"`
}

// Retention is a topic's limit, in the units of the wire protocol. Zero
// means unlimited.
type Retention struct {
	MaxAgeSecs uint64 `json:"max_age_secs"`
	MaxBytes   uint64 `json:"max_bytes"`
}

// registryState is registry.json at the top of the topics directory: the
// next topic id, persisted before an id is handed out so that no id is ever
// used twice, even after its topic was deleted and the server restarted.
type registryState struct {
	NextTopicID uint32 `json:"next_topic_id"`
}

const (
	metaFile     = "topic.json"
	registryFile = "registry.json"
	tmpSuffix    = ".tmp"
)

// writeJSONFile replaces name with v's JSON durably: a temporary file is
// written and synced, renamed over name, and the directory synced.
func writeJSONFile(fs vfs.FS, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := name + tmpSuffix
	if err := fs.Remove(tmp); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}

// readJSONFile decodes name into v, refusing files over 1 MiB.
func readJSONFile(fs vfs.FS, name string, v any) error {
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	if size > 1<<20 {
		return fmt.Errorf("%s: %d bytes is too large", name, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
