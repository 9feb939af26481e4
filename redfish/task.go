package redfish

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// followTask waits for an action answered 202 Accepted (DSP0266
// "Asynchronous operations"): the Location header names a task monitor;
// GET on it answers 202 while the task runs and, once it is done, the
// action's own response (200 or 204, or an error status with
// @Message.ExtendedInfo). Some services point Location at the Task
// resource instead, which answers 200 with a TaskState throughout: a Task
// that is not done yet is polled again, one that ended is judged by its
// state. Polling follows Retry-After (capped), else Config.TaskPoll, until
// ctx ends.
func (c *Client) followTask(ctx context.Context, method, action string, accepted *response) error {
	c.tasks.Add(1)
	monitor := accepted.header.Get("Location")
	if monitor == "" {
		if t, ok, err := DecodeTask(accepted.body); err == nil && ok {
			monitor = t.TaskMonitor
			if monitor == "" {
				monitor = t.ODataID
			}
		}
	}
	if monitor == "" {
		return &ServiceError{Problem: fmt.Sprintf("%s %s was answered 202 Accepted without a task monitor (Location)", method, action)}
	}
	p, err := c.servicePath(monitor)
	if err != nil {
		return &ServiceError{Problem: fmt.Sprintf("%s %s: task monitor: %v", method, action, err)}
	}
	wait := retryAfter(accepted.header, c.cfg.TaskPoll)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redfish: %s %s: waiting for the BMC's task %s: %w", method, action, p, ctx.Err())
		case <-t.C:
		}
		r, err := c.call(ctx, http.MethodGet, p, nil, nil)
		if err != nil {
			return err // the task's failure, or the monitor's
		}
		wait = retryAfter(r.header, c.cfg.TaskPoll)
		if r.status == http.StatusNoContent || len(r.body) == 0 {
			if r.status == http.StatusAccepted {
				continue
			}
			return nil
		}
		task, isTask, err := DecodeTask(r.body)
		if err != nil {
			if r.status == http.StatusAccepted {
				continue // still running; the body is the BMC's business
			}
			return nil // done: the action's response, whatever its body
		}
		switch {
		case !isTask && r.status == http.StatusAccepted:
			continue
		case !isTask:
			return nil
		case !task.State.Done():
			continue
		case task.State.Succeeded() && task.Status != "Critical":
			return nil
		}
		return &TaskError{Resource: action, State: task.State, Status: task.Status, Messages: task.Messages}
	}
}
