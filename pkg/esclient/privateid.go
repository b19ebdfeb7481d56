package esclient

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// DefaultIDPath returns where a client keeps its private id by default:
// eventstream/private-id under os.UserConfigDir.
func DefaultIDPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("esclient: no default private id path: %w", err)
	}
	return filepath.Join(dir, "eventstream", "private-id"), nil
}

// LoadOrCreatePrivateID returns the private id saved at path, or creates a
// random one, saves it there readable by its owner only (0600, creating
// directories as needed) and returns it. Two processes calling it at once
// for the same path get the same id.
func LoadOrCreatePrivateID(path string) (string, error) {
	if id, err := readID(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("esclient: creating the private id's directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".private-id-*")
	if err != nil {
		return "", fmt.Errorf("esclient: saving a private id: %w", err)
	}
	defer os.Remove(tmp.Name())
	id := uuid.NewString()
	_, werr := tmp.WriteString(id + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmp.Name(), 0o600)); err != nil {
		return "", fmt.Errorf("esclient: saving a private id: %w", err)
	}
	// A hard link appears whole or not at all, and fails if the path
	// exists: whoever links first wins, and everyone else reads the winner's.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("esclient: saving a private id: %w", err)
	}
	return readID(path)
}

func readID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !protocol.ValidName(id) {
		return "", fmt.Errorf("esclient: %s does not hold a valid private id (1 to %d characters of A-Z a-z 0-9 . _ ~ -)", path, protocol.MaxNameLen)
	}
	return id, nil
}
