package redfish

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The resources obmd reads, each with a pure decoder: bytes in, a typed
// value or a *DecodeError out, no I/O. Only the properties obmd uses are
// kept; everything else a BMC sends (OEM extensions included) is ignored,
// as DSP0266 asks of clients ("Clients shall ignore properties they do not
// understand"). A property of the wrong JSON type, or a resource reference
// that is not a path on the service, is an error: acting on half-read
// resources is how a client presses the wrong button.

// PowerState is ComputerSystem.PowerState (DSP8010 Resource schema,
// PowerState enumeration).
type PowerState string

// The PowerState values of the Resource schema.
const (
	PowerOn          PowerState = "On"
	PowerOff         PowerState = "Off"
	PowerPoweringOn  PowerState = "PoweringOn"
	PowerPoweringOff PowerState = "PoweringOff"
	PowerPaused      PowerState = "Paused"
)

// Known reports whether s is one of the schema's values.
func (s PowerState) Known() bool {
	switch s {
	case PowerOn, PowerOff, PowerPoweringOn, PowerPoweringOff, PowerPaused:
		return true
	}
	return false
}

// ResetType values of the Resource schema's ResetType enumeration that obmd
// may send to ComputerSystem.Reset.
const (
	ResetOn               = "On"
	ResetForceOn          = "ForceOn"
	ResetForceOff         = "ForceOff"
	ResetGracefulShutdown = "GracefulShutdown"
	ResetForceRestart     = "ForceRestart"
	ResetPowerCycle       = "PowerCycle"
	ResetPushPowerButton  = "PushPowerButton"
)

// Boot override values (DSP8010 ComputerSystem schema, Boot object:
// BootSourceOverrideEnabled and BootSourceOverrideTarget).
const (
	BootEnabledContinuous = "Continuous"
	BootEnabledOnce       = "Once"
	BootEnabledDisabled   = "Disabled"

	BootTargetPxe  = "Pxe"
	BootTargetHdd  = "Hdd"
	BootTargetNone = "None"
)

// ServiceRoot is /redfish/v1/ (DSP0266 "Service root"): where the Systems
// collection and the Sessions collection are.
type ServiceRoot struct {
	RedfishVersion string
	Systems        string // Systems collection path; "" if not offered
	SessionService string // "" if not offered
	// Sessions is Links.Sessions, the collection a client POSTs to in
	// order to log in (DSP0266 "Session login"); "" if the service offers
	// no sessions, in which case only HTTP Basic is left.
	Sessions string
}

// Collection is a resource collection: the paths of its members.
type Collection struct {
	Members []string
}

// ComputerSystem is what obmd reads of a ComputerSystem resource.
type ComputerSystem struct {
	ODataID    string
	ID         string
	PowerState PowerState // "" when the BMC reports null or nothing
	// ODataETag is @odata.etag, which some services put in the body in
	// place of (or beside) the ETag header.
	ODataETag string
	Boot      Boot
	Reset     ResetAction
}

// Boot is the ComputerSystem's Boot object.
type Boot struct {
	OverrideEnabled string
	OverrideTarget  string
	// AllowedTargets is BootSourceOverrideTarget@Redfish.AllowableValues
	// (nil: not listed).
	AllowedTargets []string
	// AllowedEnabled is BootSourceOverrideEnabled@Redfish.AllowableValues,
	// which services that refuse Continuous use to say so (nil: not
	// listed).
	AllowedEnabled []string
}

// ResetAction is Actions."#ComputerSystem.Reset".
type ResetAction struct {
	Target string // the URI to POST to; "" if the system has no Reset action
	// Allowed is ResetType@Redfish.AllowableValues (nil: not listed here;
	// see ActionInfo).
	Allowed []string
	// ActionInfo is @Redfish.ActionInfo, the path of an ActionInfo resource
	// listing the parameters' allowable values ("" if none).
	ActionInfo string
}

// TaskState is Task.TaskState (DSP8010 Task schema).
type TaskState string

// Done reports whether the task has finished, one way or another.
func (s TaskState) Done() bool {
	switch s {
	case "Completed", "Exception", "Killed", "Cancelled":
		return true
	}
	return false
}

// Succeeded reports whether the task finished well.
func (s TaskState) Succeeded() bool { return s == "Completed" }

// Task is what obmd reads of a Task resource, which task monitors may
// return while an action runs (DSP0266 "Asynchronous operations").
type Task struct {
	ODataID     string
	State       TaskState
	Status      string // TaskStatus: OK, Warning, Critical
	TaskMonitor string
	Messages    []Message
}

// Message is one entry of @Message.ExtendedInfo or of Task.Messages
// (DSP8010 Message schema).
type Message struct {
	MessageID  string   `json:"MessageId"`
	Message    string   `json:"Message"`
	Resolution string   `json:"Resolution"`
	Severity   string   `json:"Severity"`
	Args       []string `json:"MessageArgs"`
}

// String is "MessageId: Message (Resolution)" with what is present.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.MessageID)
	if m.Message != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(m.Message)
	}
	if m.Resolution != "" {
		b.WriteString(" (")
		b.WriteString(m.Resolution)
		b.WriteString(")")
	}
	return b.String()
}

// ErrorBody is a Redfish error response (DSP0266 "Error responses"):
// {"error": {"code", "message", "@Message.ExtendedInfo": [...]}}.
type ErrorBody struct {
	Code    string
	Message string
	Info    []Message
}

// DecodeError says a BMC's answer is not the resource it should be.
type DecodeError struct {
	What    string // the resource kind, e.g. "ComputerSystem"
	Problem string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("redfish: not a valid %s: %s", e.What, e.Problem)
}

// link is a resource reference, {"@odata.id": "/redfish/v1/..."}.
type link struct {
	ID *string `json:"@odata.id"`
}

// decodeObject unmarshals data, which must be one JSON object, into v.
func decodeObject(what string, data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &DecodeError{What: what, Problem: "not a JSON object"}
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &DecodeError{What: what, Problem: fmt.Sprintf("property %s is a JSON %s, not %s", te.Field, te.Value, te.Type)}
		}
		return &DecodeError{What: what, Problem: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return nil
}

// maxPathLen bounds a resource path from a BMC.
const maxPathLen = 1024

// checkPath accepts a resource path on the service: it starts with one
// "/" (DSP0266 "Resource identifier": @odata.id is a relative URI
// reference), holds no control characters, no "..", no query or fragment.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > maxPathLen:
		return fmt.Errorf("path of %d bytes", len(p))
	case p[0] != '/' || strings.HasPrefix(p, "//"):
		return fmt.Errorf("%q is not a path on this service", p)
	case strings.ContainsAny(p, "?#\\"):
		return fmt.Errorf("%q has a query, fragment or backslash", p)
	case strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return fmt.Errorf("%q climbs with ..", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q has control characters", p)
		}
	}
	return nil
}

// linkPath returns l's path ("" for a missing link) or an error naming the
// property.
func linkPath(what, prop string, l *link) (string, error) {
	if l == nil || l.ID == nil {
		return "", nil
	}
	if err := checkPath(*l.ID); err != nil {
		return "", &DecodeError{What: what, Problem: prop + ": " + err.Error()}
	}
	return *l.ID, nil
}

// DecodeServiceRoot decodes GET /redfish/v1/.
func DecodeServiceRoot(data []byte) (ServiceRoot, error) {
	const what = "ServiceRoot"
	var in struct {
		RedfishVersion string `json:"RedfishVersion"`
		Systems        *link  `json:"Systems"`
		SessionService *link  `json:"SessionService"`
		Links          *struct {
			Sessions *link `json:"Sessions"`
		} `json:"Links"`
	}
	if err := decodeObject(what, data, &in); err != nil {
		return ServiceRoot{}, err
	}
	out := ServiceRoot{RedfishVersion: in.RedfishVersion}
	var err error
	if out.Systems, err = linkPath(what, "Systems", in.Systems); err != nil {
		return ServiceRoot{}, err
	}
	if out.SessionService, err = linkPath(what, "SessionService", in.SessionService); err != nil {
		return ServiceRoot{}, err
	}
	if in.Links != nil {
		if out.Sessions, err = linkPath(what, "Links.Sessions", in.Links.Sessions); err != nil {
			return ServiceRoot{}, err
		}
	}
	return out, nil
}

// maxMembers bounds a collection obmd reads (a BMC manages a handful of
// systems; a blade chassis manager a few dozen).
const maxMembers = 1024

// DecodeCollection decodes a resource collection's Members.
func DecodeCollection(data []byte) (Collection, error) {
	const what = "resource collection"
	var in struct {
		Members *[]link `json:"Members"`
	}
	if err := decodeObject(what, data, &in); err != nil {
		return Collection{}, err
	}
	if in.Members == nil {
		return Collection{}, &DecodeError{What: what, Problem: "no Members"}
	}
	if len(*in.Members) > maxMembers {
		return Collection{}, &DecodeError{What: what, Problem: fmt.Sprintf("%d members, more than %d", len(*in.Members), maxMembers)}
	}
	out := Collection{Members: make([]string, 0, len(*in.Members))}
	for i, m := range *in.Members {
		p, err := linkPath(what, fmt.Sprintf("Members[%d]", i), &m)
		if err != nil {
			return Collection{}, err
		}
		if p == "" {
			return Collection{}, &DecodeError{What: what, Problem: fmt.Sprintf("Members[%d] has no @odata.id", i)}
		}
		out.Members = append(out.Members, p)
	}
	return out, nil
}

// DecodeComputerSystem decodes a ComputerSystem (DSP8010 ComputerSystem
// schema): Id, PowerState, Boot and the Reset action.
func DecodeComputerSystem(data []byte) (ComputerSystem, error) {
	const what = "ComputerSystem"
	var in struct {
		ODataID   string  `json:"@odata.id"`
		ODataETag string  `json:"@odata.etag"`
		ID        string  `json:"Id"`
		Power     *string `json:"PowerState"`
		Boot      *struct {
			Enabled        string   `json:"BootSourceOverrideEnabled"`
			Target         string   `json:"BootSourceOverrideTarget"`
			AllowedTargets []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
			AllowedEnabled []string `json:"BootSourceOverrideEnabled@Redfish.AllowableValues"`
		} `json:"Boot"`
		Actions *struct {
			Reset *struct {
				Target     *string  `json:"target"`
				Allowed    []string `json:"ResetType@Redfish.AllowableValues"`
				ActionInfo *string  `json:"@Redfish.ActionInfo"`
			} `json:"#ComputerSystem.Reset"`
		} `json:"Actions"`
	}
	if err := decodeObject(what, data, &in); err != nil {
		return ComputerSystem{}, err
	}
	out := ComputerSystem{ODataID: in.ODataID, ID: in.ID, ODataETag: in.ODataETag}
	if in.Power != nil {
		out.PowerState = PowerState(*in.Power)
		if !out.PowerState.Known() {
			return ComputerSystem{}, &DecodeError{What: what, Problem: fmt.Sprintf("PowerState %q is not one of On, Off, PoweringOn, PoweringOff, Paused", *in.Power)}
		}
	}
	if in.Boot != nil {
		out.Boot = Boot{
			OverrideEnabled: in.Boot.Enabled,
			OverrideTarget:  in.Boot.Target,
			AllowedTargets:  in.Boot.AllowedTargets,
			AllowedEnabled:  in.Boot.AllowedEnabled,
		}
	}
	if in.Actions != nil && in.Actions.Reset != nil {
		r := in.Actions.Reset
		if r.Target == nil {
			return ComputerSystem{}, &DecodeError{What: what, Problem: "#ComputerSystem.Reset has no target"}
		}
		if err := checkPath(*r.Target); err != nil {
			return ComputerSystem{}, &DecodeError{What: what, Problem: "#ComputerSystem.Reset target: " + err.Error()}
		}
		out.Reset = ResetAction{Target: *r.Target, Allowed: r.Allowed}
		if r.ActionInfo != nil {
			if err := checkPath(*r.ActionInfo); err != nil {
				return ComputerSystem{}, &DecodeError{What: what, Problem: "#ComputerSystem.Reset @Redfish.ActionInfo: " + err.Error()}
			}
			out.Reset.ActionInfo = *r.ActionInfo
		}
	}
	return out, nil
}

// DecodeActionInfo returns the AllowableValues of parameter name in an
// ActionInfo resource (DSP8010 ActionInfo schema), and whether the
// parameter is listed at all.
func DecodeActionInfo(data []byte, name string) ([]string, bool, error) {
	const what = "ActionInfo"
	var in struct {
		Parameters []struct {
			Name            string   `json:"Name"`
			AllowableValues []string `json:"AllowableValues"`
		} `json:"Parameters"`
	}
	if err := decodeObject(what, data, &in); err != nil {
		return nil, false, err
	}
	for _, p := range in.Parameters {
		if p.Name == name {
			return p.AllowableValues, true, nil
		}
	}
	return nil, false, nil
}

// DecodeTask decodes a Task resource. isTask is false for a body that is
// not a task at all (no TaskState), which a task monitor may return once
// the action is done: the action's own response.
func DecodeTask(data []byte) (t Task, isTask bool, err error) {
	const what = "Task"
	var in struct {
		ODataID     string    `json:"@odata.id"`
		State       *string   `json:"TaskState"`
		Status      string    `json:"TaskStatus"`
		TaskMonitor string    `json:"TaskMonitor"`
		Messages    []Message `json:"Messages"`
	}
	if err := decodeObject(what, data, &in); err != nil {
		return Task{}, false, err
	}
	if in.State == nil {
		return Task{}, false, nil
	}
	return Task{ODataID: in.ODataID, State: TaskState(*in.State), Status: in.Status,
		TaskMonitor: in.TaskMonitor, Messages: in.Messages}, true, nil
}

// DecodeErrorBody reads a Redfish error response. Anything else (HTML from
// a web server in front of the service, an empty body) gives ok false.
func DecodeErrorBody(data []byte) (body ErrorBody, ok bool) {
	var in struct {
		Error *struct {
			Code    string    `json:"code"`
			Message string    `json:"message"`
			Info    []Message `json:"@Message.ExtendedInfo"`
		} `json:"error"`
		// Some services answer with the ExtendedInfo at the top level.
		Info []Message `json:"@Message.ExtendedInfo"`
	}
	if decodeObject("error response", data, &in) != nil {
		return ErrorBody{}, false
	}
	switch {
	case in.Error != nil:
		return ErrorBody{Code: in.Error.Code, Message: in.Error.Message, Info: in.Error.Info}, true
	case len(in.Info) > 0:
		return ErrorBody{Info: in.Info}, true
	}
	return ErrorBody{}, false
}
