package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ValidationError lists what is wrong with a node's driver info (or another
// request body). It is of kind ErrInvalid (HTTP 400).
type ValidationError struct {
	What     string   // what was being validated, e.g. "ipmi info"
	Problems []string // each names the field and what is wrong with it
}

func (e *ValidationError) Error() string {
	return "invalid " + e.What + ": " + strings.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// validation collects problems found while checking one object.
type validation struct {
	what     string
	problems []string
}

func (v *validation) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validation) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{What: v.what, Problems: v.problems}
}

// DecodeStrict decodes one JSON object into v (a pointer to a struct),
// rejecting unknown fields, values of the wrong type, a non-object and
// trailing data. what names the object in the error, which is a
// *ValidationError.
func DecodeStrict(what string, data []byte, v any) error {
	fail := func(problem string) error {
		return &ValidationError{What: what, Problems: []string{problem}}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail("must be a JSON object")
	}
	if key, path := duplicateKey(trimmed); key != "" {
		return fail(fmt.Sprintf("duplicate key %q%s (JSON objects here must name each field once)", key, path))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail("unexpected data after the JSON object")
	}
	return nil
}

// duplicateKey finds the first key that appears twice in one object of
// data, at any depth, and says where ("" if none, or if data is not valid
// JSON: decoding reports that). Keys are compared as encoding/json matches
// them to struct fields, ignoring case, so {"force": true, "Force": false}
// is a duplicate too: encoding/json would silently keep the last.
func duplicateKey(data []byte) (key, where string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		name   string // the key this value is under
		want   bool   // an object expecting a key next
	}
	var stack []*frame
	pending := "" // the key of the value about to start
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.want {
			if k, ok := tok.(string); ok {
				lk := strings.ToLower(k)
				if top.keys[lk] {
					if top.name != "" {
						return k, " in " + top.name
					}
					return k, ""
				}
				top.keys[lk] = true
				top.want = false
				pending = k
				continue
			}
		}
		if top != nil && !top.object {
			pending = top.name // an array's elements go by its name
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, name: pending, want: true})
		case json.Delim('['):
			stack = append(stack, &frame{name: pending})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", ""
			}
		}
		// After a complete value in an object, a key comes next.
		if len(stack) > 0 && tok != json.Delim('{') && tok != json.Delim('[') {
			if f := stack[len(stack)-1]; f.object {
				f.want = true
			}
		}
		pending = ""
	}
}

// describeJSONError turns encoding/json's errors into a sentence naming the
// field.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s must be %s, not a JSON %s", typeErr.Field, jsonKindOf(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKindOf(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "a " + goKind
}
