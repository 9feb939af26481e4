package api

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// ginParam matches a Gin path parameter (":node_id", "*rest").
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath turns a Gin route pattern into an OpenAPI path template.
func openAPIPath(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// TestOpenAPIMatchesRouter: every route the router registers is in
// openapi.json with its method, and every documented operation is
// registered, so that the two cannot drift apart. The document must also
// be valid OpenAPI 3, which kin-openapi checks (references, parameters of
// every path template, schemas), and is what GET /openapi.json serves.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}

	registered := map[string]bool{}
	for _, r := range e.engine.Routes() {
		registered[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = true
			if len(op.Responses.Map()) == 0 {
				t.Errorf("%s %s documents no response", method, path)
			}
			for code, resp := range op.Responses.Map() {
				if code >= "400" && code != "default" && !documentsErrorBody(resp.Value) {
					t.Errorf("%s %s: response %s does not document the {\"error\": ...} body", method, path, code)
				}
			}
		}
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes not in openapi.json (document them):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("openapi.json documents routes the router does not have:\n  %s", strings.Join(extra, "\n  "))
	}

	if served := e.expect(req{method: "GET", path: "/openapi.json"}, 200); !bytes.Equal(served, openAPIDocument) {
		t.Errorf("GET /openapi.json served %d bytes, not the %d of the document", len(served), len(openAPIDocument))
	}
}

// documentsErrorBody: an error response's JSON schema is the Error schema.
func documentsErrorBody(r *openapi3.Response) bool {
	if r == nil {
		return false
	}
	mt := r.Content.Get("application/json")
	return mt != nil && mt.Schema != nil && strings.HasSuffix(mt.Schema.Ref, "/Error")
}

func TestOpenAPIPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/node":                      "/node",
		"/node/:node_id":             "/node/{node_id}",
		"/node/:node_id/power_on":    "/node/{node_id}/power_on",
		"/redfish/v1/*rest":          "/redfish/v1/{rest}",
		"/cluster/:member/nodes/:id": "/cluster/{member}/nodes/{id}",
	} {
		if got := openAPIPath(in); got != want {
			t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
		}
	}
}
