// Package install swaps verified releases into place atomically, runs the
// device's install hook and health check, and rolls back on failure.
//
// Layout of an install directory:
//
//	releases/<seq>-<version>/   one complete, verified tree per kept release
//	current  -> releases/...    symlink: the running release
//	previous -> releases/...    symlink: what a rollback returns to
//
// current and previous are replaced with rename(2) of a freshly made symlink
// and the directory is fsynced, so power loss at any instant leaves current
// pointing at one complete release — the old one or the new one, never a
// mix. Trees enter releases/ by renaming a fully assembled staging
// directory from the same filesystem, never by writing in place.
package install
