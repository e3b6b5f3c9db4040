package gossip

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/memberlist"
	"go.yaml.in/yaml/v3"
)

// LoadKeyring reads a keyring file: a YAML (or JSON) list of base64-encoded AES keys of 16, 24 or 32 bytes.
// The first key is primary: it encrypts; every key decrypts. A key may appear once.
func LoadKeyring(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKeyring(data)
}

// ParseKeyring parses the contents of a keyring file (see LoadKeyring).
func ParseKeyring(data []byte) ([][]byte, error) {
	var encoded []string
	if err := yaml.Unmarshal(data, &encoded); err != nil {
		return nil, fmt.Errorf("keyring: want a list of base64 keys: %w", err)
	}
	if len(encoded) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	seen := map[string]bool{}
	keys := make([][]byte, 0, len(encoded))
	for i, e := range encoded {
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d is not base64", i+1)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("keyring: key %d: %v", i+1, err)
		}
		if seen[string(k)] {
			return nil, fmt.Errorf("keyring: key %d (%s) appears twice", i+1, KeyFingerprint(k))
		}
		seen[string(k)] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// KeyFingerprint names a key without revealing it: the first 8 bytes of its SHA-256, in hex.
func KeyFingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey returns a new random 32-byte key, base64-encoded, for a keyring file.
func GenerateKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ReloadKeyring makes the running keyring equal to the file's keys: it adds new keys, makes the file's first
// key primary, then removes keys that are no longer listed. See "schemasync keys --help" for rotation.
func (c *Cluster) ReloadKeyring(path string) error {
	if c.keyring == nil {
		return errors.New("cluster: gossip is not encrypted; a keyring needs a restart with keyring_file set")
	}
	keys, err := LoadKeyring(path)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.keyring.AddKey(k); err != nil {
			return err
		}
	}
	if err := c.keyring.UseKey(keys[0]); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[string(k)] = true
	}
	for _, k := range c.keyring.GetKeys() {
		if !want[string(k)] {
			if err := c.keyring.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	c.log.Info("keyring reloaded", "keys", len(keys), "primary", KeyFingerprint(keys[0]))
	return nil
}

// KeyFingerprints lists the installed keys' fingerprints, primary first.
func (c *Cluster) KeyFingerprints() []string {
	if c.keyring == nil {
		return nil
	}
	primary := c.keyring.GetPrimaryKey()
	out := []string{KeyFingerprint(primary)}
	for _, k := range c.keyring.GetKeys() {
		if !bytes.Equal(k, primary) {
			out = append(out, KeyFingerprint(k))
		}
	}
	return out
}
