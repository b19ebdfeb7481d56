package esclient_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

func TestLoadOrCreatePrivateID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep", "er", "private-id")
	id, err := esclient.LoadOrCreatePrivateID(path)
	require.NoError(t, err)
	_, err = uuid.Parse(id)
	require.NoError(t, err, "a new private id is a random UUID")

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "only its owner may read a private id")

	again, err := esclient.LoadOrCreatePrivateID(path)
	require.NoError(t, err)
	assert.Equal(t, id, again, "the saved id is reused")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
}

func TestLoadOrCreatePrivateIDConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private-id")
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := esclient.LoadOrCreatePrivateID(path)
			assert.NoError(t, err)
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id, "two starts made two ids")
	}
}

func TestLoadPrivateIDRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private-id")
	require.NoError(t, os.WriteFile(path, []byte("not/a valid id\n"), 0o600))
	_, err := esclient.LoadOrCreatePrivateID(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
}

func TestNewWritesNoFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("HOME", home)
	_, err := esclient.New(esclient.Config{BaseURL: "http://127.0.0.1:1", Stream: "s"})
	require.ErrorContains(t, err, "LoadOrCreatePrivateID", "the error says how to get an id")
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	assert.Empty(t, entries, "a constructor touches no disk")
}
