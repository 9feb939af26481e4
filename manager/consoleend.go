package manager

import (
	"errors"
	"strings"
)

// ConsoleEndReason is what a console viewer is told, in band, of why its
// stream ended (err is what Viewer.Read returned, or OpenConsole's error):
// "the node's token was replaced or revoked", "the node was deleted",
// "obmd is shutting down", or for a console that could not be opened the
// tenant's message of the error (never the BMC's address or user).
func ConsoleEndReason(err error) string {
	for _, known := range []error{ErrTokenRevoked, ErrNodeDeleted, ErrShuttingDown, ErrViewerClosed} {
		if errors.Is(err, known) {
			return strings.TrimPrefix(known.Error(), "console closed: ")
		}
	}
	var e *Error
	if errors.As(err, &e) {
		return TenantMessage(err)
	}
	return "internal error"
}
