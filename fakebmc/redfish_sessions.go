package fakebmc

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// SessionService and its Sessions collection (DSP0266 "Session
// management"; DSP8010 SessionService and Session schemas).

const sessionsPath = "/redfish/v1/SessionService/Sessions"

func (s *redfishServer) sessionService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type":    "#SessionService.v1_1_8.SessionService",
		"@odata.id":      "/redfish/v1/SessionService",
		"Id":             "SessionService",
		"Name":           "Session Service",
		"ServiceEnabled": true,
		"SessionTimeout": int(s.cfg.SessionTimeout / time.Second),
		"Sessions":       odataID(sessionsPath),
	})
}

func (s *redfishServer) sessionCollection(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	members := make([]map[string]string, 0, len(s.sessions))
	for _, ss := range s.sessions {
		members = append(members, odataID(sessionsPath+"/"+ss.id))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type":         "#SessionCollection.SessionCollection",
		"@odata.id":           sessionsPath,
		"Name":                "Session Collection",
		"Members":             members,
		"Members@odata.count": len(members),
	})
}

// login is POST to the Sessions collection: 201 Created, the token in
// X-Auth-Token, the session in Location (DSP0266 "Session login").
func (s *redfishServer) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserName *string `json:"UserName"`
		Password *string `json:"Password"`
	}
	if !decodeRedfishBody(w, r, &req) {
		return
	}
	s.mu.Lock()
	s.stats.Logins++
	s.mu.Unlock()
	if req.UserName == nil || req.Password == nil {
		writeRedfishError(w, http.StatusBadRequest, baseMessage("PropertyMissing",
			"The property UserName or Password is a required property and must be included in the request.",
			"Ensure that the property is in the request body and has a valid value and resubmit the request.", "UserName"))
		return
	}
	if !s.checkPassword(*req.UserName, *req.Password) {
		s.mu.Lock()
		s.stats.FailedLogins++
		s.mu.Unlock()
		writeRedfishError(w, http.StatusUnauthorized, baseMessage("ResourceAtUriUnauthorized",
			"While accessing the resource at "+sessionsPath+", the service received an authorization error unauthorized.",
			"Ensure that the appropriate access is provided for the service in order for it to access the URI.", sessionsPath, "unauthorized"))
		return
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		writeRedfishError(w, http.StatusInternalServerError, baseMessage("InternalError",
			"The request failed due to an internal service error.", "Resubmit the request."))
		return
	}
	token := hex.EncodeToString(raw[:])
	s.mu.Lock()
	s.expireSessionsLocked(time.Now())
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		writeRedfishError(w, http.StatusServiceUnavailable, baseMessage("SessionLimitExceeded",
			"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
			"Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions (if supported)."))
		return
	}
	s.nextID++
	ss := &redfishSession{id: strconv.Itoa(s.nextID), token: token, user: *req.UserName, lastUsed: time.Now()}
	s.sessions[token] = ss
	s.mu.Unlock()
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", sessionsPath+"/"+ss.id)
	writeJSON(w, http.StatusCreated, sessionJSON(ss))
}

func sessionJSON(ss *redfishSession) map[string]any {
	return map[string]any{
		"@odata.type": "#Session.v1_3_0.Session",
		"@odata.id":   sessionsPath + "/" + ss.id,
		"Id":          ss.id,
		"Name":        "User Session",
		"UserName":    ss.user,
	}
}

func (s *redfishServer) findSessionLocked(id string) *redfishSession {
	for _, ss := range s.sessions {
		if ss.id == id {
			return ss
		}
	}
	return nil
}

func (s *redfishServer) getSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ss := s.findSessionLocked(r.PathValue("id"))
	var body map[string]any
	if ss != nil {
		body = sessionJSON(ss)
	}
	s.mu.Unlock()
	if ss == nil {
		s.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// deleteSession is the logout (DSP0266 "Session termination").
func (s *redfishServer) deleteSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ss := s.findSessionLocked(r.PathValue("id"))
	if ss != nil {
		delete(s.sessions, ss.token)
	}
	s.mu.Unlock()
	if ss == nil {
		s.notFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// touchSession reports whether token is a live session, and keeps it
// alive.
func (s *redfishServer) touchSession(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.expireSessionsLocked(now)
	ss, ok := s.sessions[token]
	if ok {
		ss.lastUsed = now
	}
	return ok
}

// expireSessionsLocked ends sessions idle for SessionTimeout.
func (s *redfishServer) expireSessionsLocked(now time.Time) {
	for tok, ss := range s.sessions {
		if now.Sub(ss.lastUsed) >= s.cfg.SessionTimeout {
			delete(s.sessions, tok)
		}
	}
}

// dropSessions forgets every session, as a BMC restart does.
func (s *redfishServer) dropSessions() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
}
