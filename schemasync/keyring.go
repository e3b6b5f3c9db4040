package schemasync

import (
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
