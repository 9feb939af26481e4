package api

import "github.com/gin-gonic/gin"

// Routes other packages mount on the API's engine (the cluster's
// instance-to-instance routes, package cluster) check credentials of their
// own. These tell the API's connection guard and logging what they found,
// so such a request is treated as an admin's or a token holder's would be.

// peerKey marks a request whose route-specific credential was checked.
const peerKey = "obmd.peer"

// MarkAuthenticated records that the request's credential was checked: its
// connection is never evicted to make room (a console stream between
// instances lives long), and its refusals are not rate-limited in the log.
func MarkAuthenticated(c *gin.Context) {
	c.Set(peerKey, true)
	markAuthenticated(c)
}

// RefuseUnauthenticated ends a refused request's connection at once
// instead of reading the body it declared, as the API's own refusals do.
// Call it before writing the refusal.
func RefuseUnauthenticated(c *gin.Context) {
	refuseConnection(c)
}
