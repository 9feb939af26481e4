package fakebmc

import (
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Tasks and task monitors (DSP0266 "Asynchronous operations"; DSP8010
// Task schema), for the task-202 quirk: an action is answered 202 Accepted
// with a task monitor in Location and happens TaskDuration later. The
// monitor answers 202 with the Task while it runs, then the action's own
// response (204, or an error response if it failed); the Task resource
// stays readable.

const (
	tasksPath    = "/redfish/v1/TaskService/Tasks/"
	monitorsPath = "/redfish/v1/TaskService/TaskMonitors/"
	// maxKeptTasks bounds finished tasks kept for reading.
	maxKeptTasks = 32
)

type redfishTask struct {
	id        string
	resetType string
	started   time.Time
	timer     *time.Timer
	state     string // Running, Completed, Exception
	err       string // why it ended in Exception
}

func (t *redfishTask) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// startTask answers 202 and schedules the reset.
func (s *redfishServer) startTask(w http.ResponseWriter, resetType string) {
	s.mu.Lock()
	s.nextID++
	t := &redfishTask{id: strconv.Itoa(s.nextID), resetType: resetType, started: time.Now(), state: "Running"}
	s.tasks[t.id] = t
	s.stats.TasksStarted++
	s.pruneTasksLocked()
	t.timer = time.AfterFunc(s.cfg.TaskDuration, func() {
		err := s.doReset(resetType)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			t.state, t.err = "Exception", err.Error()
		} else {
			t.state = "Completed"
		}
	})
	body := taskJSON(t)
	s.mu.Unlock()
	w.Header().Set("Location", monitorsPath+t.id)
	writeJSON(w, http.StatusAccepted, body)
}

func (s *redfishServer) pruneTasksLocked() {
	if len(s.tasks) <= maxKeptTasks {
		return
	}
	var done []*redfishTask
	for _, t := range s.tasks {
		if t.state != "Running" {
			done = append(done, t)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].started.Before(done[j].started) })
	for _, t := range done[:max(0, len(s.tasks)-maxKeptTasks)] {
		delete(s.tasks, t.id)
	}
}

// taskJSON is the Task resource; callers hold s.mu.
func taskJSON(t *redfishTask) map[string]any {
	status := "OK"
	var msgs []map[string]any
	if t.state == "Exception" {
		status = "Critical"
		msgs = append(msgs, baseMessage("InternalError", "The request failed due to an internal service error: "+t.err, "Resubmit the request."))
	}
	if msgs == nil {
		msgs = []map[string]any{}
	}
	return map[string]any{
		"@odata.type": "#Task.v1_7_0.Task",
		"@odata.id":   tasksPath + t.id,
		"Id":          t.id,
		"Name":        "ComputerSystem.Reset " + t.resetType,
		"TaskState":   t.state,
		"TaskStatus":  status,
		"TaskMonitor": monitorsPath + t.id,
		"StartTime":   t.started.UTC().Format(time.RFC3339),
		"Messages":    msgs,
	}
}

func (s *redfishServer) getTask(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t, ok := s.tasks[r.PathValue("id")]
	var body map[string]any
	if ok {
		body = taskJSON(t)
	}
	s.mu.Unlock()
	if !ok {
		s.notFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *redfishServer) taskMonitor(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	t, ok := s.tasks[r.PathValue("id")]
	var body map[string]any
	var state, why string
	if ok {
		body, state, why = taskJSON(t), t.state, t.err
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.notFound(w, r)
	case state == "Running":
		w.Header().Set("Location", monitorsPath+t.id)
		writeJSON(w, http.StatusAccepted, body)
	case state == "Exception":
		writeRedfishError(w, http.StatusInternalServerError, baseMessage("InternalError",
			"The request failed due to an internal service error: "+why, "Resubmit the request."))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
