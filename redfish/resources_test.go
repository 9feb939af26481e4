package redfish

import (
	"errors"
	"reflect"
	"testing"
)

// Payloads shaped like real services' (trimmed to what obmd reads, with
// the OEM noise that must be ignored), as published in vendors' Redfish
// documentation and the DMTF mockups.

const (
	rootIDRAC = `{"@odata.context":"/redfish/v1/$metadata#ServiceRoot.ServiceRoot","@odata.id":"/redfish/v1","@odata.type":"#ServiceRoot.v1_6_0.ServiceRoot",
 "AccountService":{"@odata.id":"/redfish/v1/AccountService"},"Id":"RootService",
 "Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}},
 "Name":"Root Service","Oem":{"Dell":{"ManagerMACAddress":"d0:94:66:00:00:00","ServiceTag":"ABC1234"}},
 "RedfishVersion":"1.11.0","SessionService":{"@odata.id":"/redfish/v1/SessionService"},"Systems":{"@odata.id":"/redfish/v1/Systems"}}`
	rootNoSessions = `{"@odata.id":"/redfish/v1/","RedfishVersion":"1.0.2","Systems":{"@odata.id":"/redfish/v1/Systems"}}`

	systemsTwo = `{"@odata.id":"/redfish/v1/Systems","Members":[{"@odata.id":"/redfish/v1/Systems/1"},{"@odata.id":"/redfish/v1/Systems/2"}],"Members@odata.count":2}`

	// iDRAC-like: allowable values inline.
	systemIDRAC = `{"@odata.id":"/redfish/v1/Systems/System.Embedded.1","Id":"System.Embedded.1","PowerState":"On",
 "Actions":{"#ComputerSystem.Reset":{"target":"/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset",
   "ResetType@Redfish.AllowableValues":["On","ForceOff","ForceRestart","GracefulShutdown","PushPowerButton","Nmi"]}},
 "Boot":{"BootSourceOverrideEnabled":"Disabled","BootSourceOverrideMode":"UEFI","BootSourceOverrideTarget":"None",
   "BootSourceOverrideTarget@Redfish.AllowableValues":["None","Pxe","Floppy","Cd","Hdd","BiosSetup","Utilities","UefiTarget","SDCard","UefiHttp"]},
 "Oem":{"Dell":{"DellSystem":{"BIOSReleaseDate":"01/01/2024"}}}}`
	// OpenBMC bmcweb-like: ActionInfo, null PowerState never seen but
	// PoweringOn is.
	systemBMCWeb = `{"@odata.etag":"\"1698000000\"","@odata.id":"/redfish/v1/Systems/system","Id":"system","PowerState":"PoweringOn",
 "Actions":{"#ComputerSystem.Reset":{"@Redfish.ActionInfo":"/redfish/v1/Systems/system/ResetActionInfo","target":"/redfish/v1/Systems/system/Actions/ComputerSystem.Reset"}},
 "Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled@Redfish.AllowableValues":["Once","Disabled"]}}`

	actionInfoBMCWeb = `{"@odata.id":"/redfish/v1/Systems/system/ResetActionInfo","Id":"ResetActionInfo",
 "Parameters":[{"AllowableValues":["On","ForceOff","ForceOn","ForceRestart","GracefulRestart","GracefulShutdown","PowerCycle","Nmi"],"DataType":"String","Name":"ResetType","Required":true}]}`

	taskRunning = `{"@odata.id":"/redfish/v1/TaskService/Tasks/JID_1","@odata.type":"#Task.v1_4_3.Task","Id":"JID_1","TaskState":"Running","TaskStatus":"OK","Messages":[]}`
	taskFailed  = `{"@odata.id":"/redfish/v1/TaskService/Tasks/7","TaskState":"Exception","TaskStatus":"Critical","Messages":[{"MessageId":"Base.1.8.InternalError","Message":"The request failed due to an internal service error."}]}`

	errorILO  = `{"error":{"code":"iLO.0.10.ExtendedInfo","message":"See @Message.ExtendedInfo for more information.","@Message.ExtendedInfo":[{"MessageId":"Base.1.12.NoValidSession"}]}}`
	errorOBMC = `{"error":{"@Message.ExtendedInfo":[{"@odata.type":"#Message.v1_1_1.Message","Message":"The value 'Continuous' for the property BootSourceOverrideEnabled is not in the list of acceptable values.","MessageArgs":["Continuous","BootSourceOverrideEnabled"],"MessageId":"Base.1.8.1.PropertyValueNotInList","MessageSeverity":"Warning","Resolution":"Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed."}],"code":"Base.1.8.1.PropertyValueNotInList","message":"The value 'Continuous' for the property BootSourceOverrideEnabled is not in the list of acceptable values."}}`
)

func TestDecodeServiceRoot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ServiceRoot
		wantErr bool
	}{
		{"iDRAC", rootIDRAC, ServiceRoot{RedfishVersion: "1.11.0", Systems: "/redfish/v1/Systems", SessionService: "/redfish/v1/SessionService", Sessions: "/redfish/v1/SessionService/Sessions"}, false},
		{"no sessions", rootNoSessions, ServiceRoot{RedfishVersion: "1.0.2", Systems: "/redfish/v1/Systems"}, false},
		{"Systems not a link", `{"Systems":"/redfish/v1/Systems"}`, ServiceRoot{}, true},
		{"link to another host", `{"Systems":{"@odata.id":"//evil.example/redfish/v1/Systems"}}`, ServiceRoot{}, true},
		{"absolute URL", `{"Links":{"Sessions":{"@odata.id":"https://evil.example/s"}}}`, ServiceRoot{}, true},
		{"not JSON", `<html>login</html>`, ServiceRoot{}, true},
		{"array", `[]`, ServiceRoot{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeServiceRoot([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var de *DecodeError
			if err != nil && !errors.As(err, &de) {
				t.Errorf("error %T is not a *DecodeError", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeCollection(t *testing.T) {
	t.Parallel()
	got, err := DecodeCollection([]byte(systemsTwo))
	if err != nil || !reflect.DeepEqual(got.Members, []string{"/redfish/v1/Systems/1", "/redfish/v1/Systems/2"}) {
		t.Errorf("two systems: %+v, %v", got, err)
	}
	for _, bad := range []string{`{}`, `{"Members":[{}]}`, `{"Members":[{"@odata.id":"../x"}]}`, `{"Members":{"@odata.id":"/x"}}`, `{"Members":[{"@odata.id":"/a/../../b"}]}`} {
		if _, err := DecodeCollection([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func TestDecodeComputerSystem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ComputerSystem
		wantErr bool
	}{
		{"iDRAC", systemIDRAC, ComputerSystem{
			ODataID: "/redfish/v1/Systems/System.Embedded.1", ID: "System.Embedded.1", PowerState: PowerOn,
			Boot: Boot{OverrideEnabled: "Disabled", OverrideTarget: "None",
				AllowedTargets: []string{"None", "Pxe", "Floppy", "Cd", "Hdd", "BiosSetup", "Utilities", "UefiTarget", "SDCard", "UefiHttp"}},
			Reset: ResetAction{Target: "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset",
				Allowed: []string{"On", "ForceOff", "ForceRestart", "GracefulShutdown", "PushPowerButton", "Nmi"}},
		}, false},
		{"bmcweb", systemBMCWeb, ComputerSystem{
			ODataID: "/redfish/v1/Systems/system", ID: "system", PowerState: PowerPoweringOn, ODataETag: `"1698000000"`,
			Boot:  Boot{OverrideEnabled: "Once", OverrideTarget: "Pxe", AllowedEnabled: []string{"Once", "Disabled"}},
			Reset: ResetAction{Target: "/redfish/v1/Systems/system/Actions/ComputerSystem.Reset", ActionInfo: "/redfish/v1/Systems/system/ResetActionInfo"},
		}, false},
		{"null PowerState", `{"Id":"1","PowerState":null}`, ComputerSystem{ID: "1"}, false},
		{"unknown PowerState", `{"PowerState":"Sleeping"}`, ComputerSystem{}, true},
		{"PowerState a number", `{"PowerState":1}`, ComputerSystem{}, true},
		{"Reset without target", `{"Actions":{"#ComputerSystem.Reset":{}}}`, ComputerSystem{}, true},
		{"Reset target elsewhere", `{"Actions":{"#ComputerSystem.Reset":{"target":"https://evil.example/reset"}}}`, ComputerSystem{}, true},
		{"ActionInfo with a query", `{"Actions":{"#ComputerSystem.Reset":{"target":"/r","@Redfish.ActionInfo":"/a?x=1"}}}`, ComputerSystem{}, true},
		{"allowable values not strings", `{"Actions":{"#ComputerSystem.Reset":{"target":"/r","ResetType@Redfish.AllowableValues":[1]}}}`, ComputerSystem{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeComputerSystem([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeActionInfo(t *testing.T) {
	t.Parallel()
	got, listed, err := DecodeActionInfo([]byte(actionInfoBMCWeb), "ResetType")
	if err != nil || !listed || len(got) != 8 || got[6] != "PowerCycle" {
		t.Errorf("bmcweb: %v %v %v", got, listed, err)
	}
	if _, listed, err := DecodeActionInfo([]byte(actionInfoBMCWeb), "Other"); err != nil || listed {
		t.Errorf("absent parameter: listed %v, %v", listed, err)
	}
	if _, _, err := DecodeActionInfo([]byte(`{"Parameters":{}}`), "ResetType"); err == nil {
		t.Error("Parameters as an object decoded")
	}
}

func TestDecodeTask(t *testing.T) {
	t.Parallel()
	task, ok, err := DecodeTask([]byte(taskRunning))
	if err != nil || !ok || task.State != "Running" || task.State.Done() {
		t.Errorf("running: %+v %v %v", task, ok, err)
	}
	task, ok, err = DecodeTask([]byte(taskFailed))
	if err != nil || !ok || !task.State.Done() || task.State.Succeeded() || len(task.Messages) != 1 || task.Messages[0].MessageID != "Base.1.8.InternalError" {
		t.Errorf("failed: %+v %v %v", task, ok, err)
	}
	if _, ok, err := DecodeTask([]byte(`{"@odata.id":"/redfish/v1/Systems/1"}`)); err != nil || ok {
		t.Errorf("a non-task decoded as a task: %v %v", ok, err)
	}
}

func TestDecodeErrorBody(t *testing.T) {
	t.Parallel()
	b, ok := DecodeErrorBody([]byte(errorOBMC))
	if !ok || len(b.Info) != 1 || b.Info[0].MessageID != "Base.1.8.1.PropertyValueNotInList" || b.Info[0].Args[0] != "Continuous" {
		t.Errorf("OpenBMC: %+v %v", b, ok)
	}
	herr := &HTTPError{Method: "PATCH", Resource: "/redfish/v1/Systems/system", Status: 400, Body: b}
	if !mentionsContinuous(herr) {
		t.Error("the refusal of Continuous is not recognised")
	}
	b, ok = DecodeErrorBody([]byte(errorILO))
	herr = &HTTPError{Method: "GET", Resource: "/redfish/v1/Systems/1", Status: 401, Body: b}
	if !ok || herr.Error() != "redfish: GET /redfish/v1/Systems/1: HTTP 401 Unauthorized: Base.1.12.NoValidSession" ||
		herr.BMCReason() != "the BMC answered HTTP 401 Unauthorized (Base.1.12.NoValidSession)" {
		t.Errorf("iLO: %q / %q", herr.Error(), herr.BMCReason())
	}
	if _, ok := DecodeErrorBody([]byte("<html>502 Bad Gateway</html>")); ok {
		t.Error("HTML decoded as an error body")
	}
}

// Fuzz targets: no input makes a decoder panic, and whatever decodes
// holds only paths on the service.

func FuzzDecodeServiceRoot(f *testing.F) {
	for _, s := range []string{rootIDRAC, rootNoSessions, `{}`, `{"Links":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeServiceRoot(data)
		if err != nil {
			return
		}
		for _, p := range []string{r.Systems, r.SessionService, r.Sessions} {
			if p != "" && checkPath(p) != nil {
				t.Errorf("decoded path %q", p)
			}
		}
	})
}

func FuzzDecodeCollection(f *testing.F) {
	f.Add([]byte(systemsTwo))
	f.Add([]byte(`{"Members":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCollection(data)
		if err != nil {
			return
		}
		for _, p := range c.Members {
			if checkPath(p) != nil {
				t.Errorf("decoded member %q", p)
			}
		}
	})
}

func FuzzDecodeComputerSystem(f *testing.F) {
	for _, s := range []string{systemIDRAC, systemBMCWeb, `{"PowerState":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := DecodeComputerSystem(data)
		if err != nil {
			return
		}
		if cs.PowerState != "" && !cs.PowerState.Known() {
			t.Errorf("PowerState %q decoded", cs.PowerState)
		}
		if cs.Reset.Target != "" && checkPath(cs.Reset.Target) != nil {
			t.Errorf("Reset target %q decoded", cs.Reset.Target)
		}
	})
}

func FuzzDecodeTaskAndError(f *testing.F) {
	for _, s := range []string{taskRunning, taskFailed, errorILO, errorOBMC, actionInfoBMCWeb} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = DecodeTask(data)
		_, _ = DecodeErrorBody(data)
		_, _, _ = DecodeActionInfo(data, "ResetType")
	})
}
