package crypto

import "errors"

// ErrDecrypt means authenticated decryption failed: the key, the context
// (channel, epoch, AAD) or the ciphertext is wrong. It never says which, on
// purpose.
var ErrDecrypt = errors.New("decryption failed")
